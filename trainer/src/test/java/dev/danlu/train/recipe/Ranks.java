package dev.danlu.train.recipe;

import dev.danlu.testkit.Floats;
import dev.danlu.train.checkpoint.SafeTensors;
import dev.danlu.train.comm.Communicator;
import dev.danlu.train.comm.LocalCommunicator;
import dev.danlu.train.comm.RankThreads;
import dev.danlu.train.config.TrainConfig;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Runs the config's recipe on N rank threads of this JVM, joined by in-process communicators or by
 * any given ones (a real TCP ring): the one rank runner of the recipe tests and the launcher's
 * reference runs.
 */
final class Ranks {
  private Ranks() {}

  /** Runs to the end; returns rank 0's log. Rethrows the first rank failure. */
  static String run(int n, TrainConfig cfg) throws Exception {
    return run(n, cfg, null);
  }

  /** As {@link #run(int, TrainConfig)} with a progress listener on every rank. */
  static String run(int n, TrainConfig cfg, ProgressListener progress) throws Exception {
    return run(n, cfg, progress, TrainLoop.NO_HOOK);
  }

  /** As {@link #run(int, TrainConfig, ProgressListener)} with a test hook on every rank. */
  static String run(int n, TrainConfig cfg, ProgressListener progress, TrainLoop.StepHook hook)
      throws Exception {
    return run(LocalCommunicator.group(n, 120_000), cfg, progress, hook);
  }

  /**
   * Runs rank r on {@code comms.get(r)}'s thread; on the first failure every communicator is closed
   * (so no rank waits for a dead peer) and that failure is rethrown. Returns the ranks' log.
   */
  static String run(
      List<? extends Communicator> comms,
      TrainConfig cfg,
      ProgressListener progress,
      TrainLoop.StepHook hook)
      throws Exception {
    int n = comms.size();
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    PrintStream ps = new PrintStream(log, true, StandardCharsets.UTF_8);
    AtomicReference<Exception> failure = new AtomicReference<>();
    try {
      RankThreads.run(
          n,
          rank -> {
            try {
              // the recipe the config's stage names, as workers and Spark tasks pick it
              Recipe recipe = Recipes.forConfig(cfg);
              if (recipe instanceof PretrainRecipe p) {
                p.withStepHook(hook);
              }
              return recipe.run(new TrainContext(rank, n, comms.get(rank), cfg, progress), ps);
            } catch (Exception e) {
              failure.compareAndSet(null, e);
              closeAll(comms);
              throw e;
            }
          });
    } catch (Exception e) {
      throw failure.get() != null ? failure.get() : e;
    } finally {
      closeAll(comms);
    }
    return log.toString(StandardCharsets.UTF_8);
  }

  private static void closeAll(List<? extends Communicator> comms) {
    for (Communicator c : comms) {
      try {
        c.close();
      } catch (Exception e) {
        // closing is best effort here: the first failure is what the test reports
      }
    }
  }

  /** Every tensor of an adapter_model.safetensors (or any safetensors file). */
  static Map<String, float[]> tensors(Path file) {
    Map<String, float[]> out = new LinkedHashMap<>();
    try (SafeTensors st = SafeTensors.open(file)) {
      for (String n : st.names()) {
        out.put(n, st.readFloats(n));
      }
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    return out;
  }

  /** max over tensors of ||a - b|| / ||b|| (b the reference). */
  static double relError(Map<String, float[]> a, Map<String, float[]> b) {
    return Floats.relError(a, b);
  }
}
