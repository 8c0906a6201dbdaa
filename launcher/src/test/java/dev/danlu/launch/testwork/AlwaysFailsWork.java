package dev.danlu.launch.testwork;

import dev.danlu.launch.RankContext;
import dev.danlu.launch.RankWork;
import java.io.UncheckedIOException;

/** Rank 1 always fails with a nested cause; the driver must report the root cause and rank. */
public final class AlwaysFailsWork implements RankWork {
  @Override
  public String run(RankContext ctx) throws Exception {
    if (ctx.rank() == 1) {
      throw new IllegalStateException(
          "cannot load shard",
          new UncheckedIOException(
              new java.io.IOException("No space left on device: /scratch/shard-00003.arrow")));
    }
    // Rank 0 waits for its peer like a real rank would, until Spark kills the stage.
    try (var s = ctx.listener().accept()) {
      return "unreachable";
    }
  }
}
