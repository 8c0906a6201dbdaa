package dev.danlu.launch.smoke;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.danlu.launch.RankContext;
import dev.danlu.launch.RankWork;
import dev.danlu.train.config.ConfigLoader;
import dev.danlu.train.config.TrainConfig;
import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A cluster smoke test that behaves like a trainer without a model: {@code max_steps} steps, each a
 * ring all-gather of one value per rank over authenticated sockets between the executors,
 * checkpoints committed by rank 0 under {@code output_dir} (shared by all ranks, as the trainer's
 * is), resume from the newest committed checkpoint, progress every step. Run it with {@code
 * --work-class dev.danlu.launch.smoke.RingSmokeWork} to check a cluster's rendezvous, networking,
 * shared output directory and retry path before a real training run. Step pace: env {@code
 * DANLU_SMOKE_STEP_MILLIS} (default 200).
 */
public final class RingSmokeWork implements RankWork {
  public static final String RESULT_FILE = "smoke-result.json";
  private static final Logger LOG = LoggerFactory.getLogger(RingSmokeWork.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String COMMITTED = "COMMITTED";
  private static final int KEEP = 3;

  @Override
  public String run(RankContext ctx) throws Exception {
    TrainConfig config =
        ConfigLoader.load(ctx.configYaml(), ctx.configSource(), ctx.overrides()).config();
    Path out = Path.of(config.outputDir());
    Files.createDirectories(out);
    int w = ctx.worldSize();
    long maxSteps = config.maxSteps();
    if (maxSteps <= 0) {
      throw new IllegalArgumentException("the smoke run counts steps: set max_steps > 0");
    }
    long pace = Long.parseLong(System.getenv().getOrDefault("DANLU_SMOKE_STEP_MILLIS", "200"));

    long step = 0;
    long[] values = RingSmokeState.initial(config.seed(), w);
    Resume resume = newestCommitted(out, w);
    if (resume != null) {
      step = resume.step;
      values = resume.values;
      LOG.info("{} resuming from {} (step {})", ctx.logPrefix(), resume.dir, step);
    }
    long mine = values[ctx.rank()];
    try (RingLink ring = w > 1 ? RingLink.open(ctx) : null) {
      long t0 = System.nanoTime();
      long firstStep = step;
      while (step < maxSteps) {
        long start = System.nanoTime();
        long[] all = w > 1 ? allGather(ctx, ring, step, mine) : new long[] {mine};
        step++;
        long[] next = RingSmokeState.next(all, step);
        mine = next[ctx.rank()];
        if (ctx.rank() == 0) {
          commit(out, step, next);
        }
        Thread.sleep(pace);
        double stepSeconds = (System.nanoTime() - start) / 1e9;
        double elapsed = (System.nanoTime() - t0) / 1e9;
        double perStep = elapsed / (step - firstStep);
        double ringBytesPerSec = 16.0 * 2 * (w - 1) / stepSeconds;
        ctx.progress()
            .report(
                step,
                maxSteps,
                RingSmokeState.loss(mine, step),
                ringBytesPerSec,
                perStep * (maxSteps - step),
                stepSeconds);
      }
    } finally {
      ctx.listener().close();
    }
    if (ctx.rank() == 0) {
      writeResult(out, step, resume == null ? null : resume.dir, w);
    }
    return String.format("step %d value %016x gpus %s", step, mine, ctx.gpuAddresses());
  }

  /**
   * Ring all-gather: w-1 rounds, each passing on what arrived in the previous round. Every message
   * carries the step, so ranks that resumed from different checkpoints fail loudly.
   */
  private static long[] allGather(RankContext ctx, RingLink ring, long step, long mine)
      throws IOException {
    int w = ctx.worldSize();
    long[] all = new long[w];
    all[ctx.rank()] = mine;
    int origin = ctx.rank();
    long value = mine;
    for (int round = 0; round < w - 1; round++) {
      ring.out.writeLong(step);
      ring.out.writeInt(origin);
      ring.out.writeLong(value);
      ring.out.flush();
      long theirStep = ring.in.readLong();
      origin = ring.in.readInt();
      value = ring.in.readLong();
      if (theirStep != step) {
        throw new IllegalStateException(
            ctx.logPrefix()
                + " the previous rank at "
                + ring.prevAddress
                + " is at step "
                + theirStep
                + ", this rank at "
                + step
                + ": ranks resumed from different checkpoints");
      }
      all[origin] = value;
    }
    return all;
  }

  private record Resume(Path dir, long step, long[] values) {}

  private static Resume newestCommitted(Path out, int worldSize) throws IOException {
    Resume best = null;
    try (Stream<Path> dirs = Files.list(out)) {
      for (Path d : (Iterable<Path>) dirs::iterator) {
        String name = d.getFileName().toString();
        if (!name.startsWith("checkpoint-") || !Files.exists(d.resolve(COMMITTED))) {
          continue;
        }
        JsonNode state = JSON.readTree(d.resolve("state.json").toFile());
        long step = state.get("step").asLong();
        if (best != null && best.step >= step) {
          continue;
        }
        JsonNode vs = state.get("values");
        if (vs.size() != worldSize) {
          throw new IllegalStateException(
              d
                  + " holds "
                  + vs.size()
                  + " ranks but the run has world size "
                  + worldSize
                  + "; the smoke run resumes only on the same world size");
        }
        long[] values = new long[worldSize];
        for (int i = 0; i < worldSize; i++) {
          values[i] = Long.parseUnsignedLong(vs.get(i).asText(), 16);
        }
        best = new Resume(d, step, values);
      }
    }
    return best;
  }

  /** Writes into a temporary directory, marker last, then renames: a reader sees all or none. */
  private static void commit(Path out, long step, long[] values) throws IOException {
    Path dir = out.resolve("checkpoint-" + step);
    if (Files.exists(dir.resolve(COMMITTED))) {
      return; // a killed earlier attempt committed this very step; the content is identical
    }
    Path tmp = Files.createTempDirectory(out, ".tmp-checkpoint-" + step + "-");
    ObjectNode state = JSON.createObjectNode();
    state.put("step", step);
    var arr = state.putArray("values");
    for (long v : values) {
      arr.add(String.format("%016x", v));
    }
    JSON.writeValue(tmp.resolve("state.json").toFile(), state);
    Files.writeString(tmp.resolve(COMMITTED), "step " + step + "\n");
    deleteTree(dir); // an uncommitted leftover
    try {
      Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
    } catch (AtomicMoveNotSupportedException e) {
      throw new IOException(out + " does not support atomic renames; use a POSIX filesystem", e);
    }
    try (Stream<Path> dirs = Files.list(out)) {
      List<Path> old =
          dirs.filter(p -> p.getFileName().toString().startsWith("checkpoint-"))
              .filter(p -> stepOf(p) <= step - KEEP)
              .toList();
      for (Path p : old) {
        deleteTree(p);
      }
    }
  }

  private static long stepOf(Path p) {
    try {
      return Long.parseLong(p.getFileName().toString().substring("checkpoint-".length()));
    } catch (NumberFormatException e) {
      return Long.MAX_VALUE;
    }
  }

  private static void writeResult(Path out, long step, Path resumedFrom, int w) throws IOException {
    Resume last = newestCommitted(out, w);
    ObjectNode r = JSON.createObjectNode();
    r.put("step", step);
    r.set("values", JSON.readTree(last.dir.resolve("state.json").toFile()).get("values"));
    r.put("resumedFrom", resumedFrom == null ? null : resumedFrom.getFileName().toString());
    Path tmp = out.resolve(RESULT_FILE + ".tmp");
    JSON.writeValue(tmp.toFile(), r);
    Files.move(tmp, out.resolve(RESULT_FILE), StandardCopyOption.ATOMIC_MOVE);
  }

  private static void deleteTree(Path p) throws IOException {
    if (!Files.exists(p)) {
      return;
    }
    try (Stream<Path> s = Files.walk(p)) {
      for (Path q : s.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(q);
      }
    }
  }
}
