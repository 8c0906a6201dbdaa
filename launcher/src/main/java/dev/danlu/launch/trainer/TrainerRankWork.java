package dev.danlu.launch.trainer;

import dev.danlu.launch.RankContext;
import dev.danlu.launch.RankWork;
import dev.danlu.train.comm.CommSpec;
import dev.danlu.train.comm.Communicator;
import dev.danlu.train.comm.Communicators;
import dev.danlu.train.comm.DdpBackend;
import dev.danlu.train.comm.LocalCommunicator;
import dev.danlu.train.comm.RingListener;
import dev.danlu.train.comm.TcpRingOptions;
import dev.danlu.train.config.ConfigLoader;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.recipe.Recipes;
import dev.danlu.train.recipe.TrainContext;
import dev.danlu.train.recipe.TrainLoop;
import dev.danlu.train.tensor.Backend;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.OptionalInt;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The trainer as a Spark barrier task: the thin adapter from the launcher's {@link RankContext} to
 * the trainer's recipe for the config's {@code stage} (e.g. {@code PretrainRecipe}), which runs
 * unchanged (and resumes from the newest committed checkpoint under output_dir, as a retried stage
 * requires).
 *
 * <p>{@code ddp_backend} picks the collectives ({@link DdpBackend}): NCCL on the one GPU Spark
 * assigned to the task (its unique id sent from rank 0 through {@link ListenerRendezvous}), or the
 * TCP ring. The TCP ring listens on a port of its own; its address travels to the other ranks over
 * the listener the launcher bound and published through the barrier's allGather ({@link
 * ListenerRendezvous}). Re-binding the published port instead races: a peer's connection queued on
 * the old socket is reset when it closes.
 *
 * <p>Env {@code DANLU_STEP_DELAY_MS} (as for {@code danlu worker}) slows every step down: the
 * cluster test kills an executor mid-run and needs a run that lasts ({@code spark.executorEnv.…});
 * in local mode, where the tasks share the test's JVM, the system property {@code
 * danlu.step.delay.ms} does the same.
 */
public final class TrainerRankWork implements RankWork {
  @Override
  public String run(RankContext ctx) throws Exception {
    TrainConfig config =
        ConfigLoader.load(ctx.configYaml(), ctx.configSource(), ctx.overrides()).config();
    DdpBackend.Choice backend;
    try {
      backend = chooseBackend(config.ddpBackend(), ctx.gpuAddresses());
    } catch (RuntimeException e) {
      ctx.listener().close();
      throw e;
    }
    String mine = ctx.peerAddresses().get(ctx.rank());
    String host = mine.substring(0, mine.lastIndexOf(':'));
    PrintStream log = prefixed(System.err, ctx.logPrefix() + " ");
    log.println(backend.reason());
    long delayMillis =
        Long.getLong(
            "danlu.step.delay.ms",
            Long.parseLong(System.getenv().getOrDefault("DANLU_STEP_DELAY_MS", "0")));
    try (Communicator comm =
        backend.kind().equals("nccl") ? joinNccl(ctx, host, backend) : join(ctx, host)) {
      TrainLoop.Result r =
          Recipes.forConfig(config)
              .run(
                  new TrainContext(
                      ctx.rank(),
                      ctx.worldSize(),
                      comm,
                      config,
                      ctx.progress().asListener(() -> pause(delayMillis))),
                  log);
      return String.format(
          Locale.ROOT,
          "%s %d steps, last loss %.4f, eval loss %.4f, adapter %s, gpus %s",
          ctx.logPrefix(),
          r.steps(),
          r.lastLoss(),
          r.evalLoss(),
          r.adapterDir(),
          ctx.gpuAddresses());
    } finally {
      log.close();
    }
  }

  private static void pause(long millis) {
    if (millis > 0) {
      try {
        Thread.sleep(millis);
      } catch (InterruptedException e) {
        // the launcher's watchdog interrupts a cancelled task: keep the flag so the ring sees it
        Thread.currentThread().interrupt();
      }
    }
  }

  /** {@code ddp_backend} for this task: its GPU is the one address Spark assigned to it. */
  static DdpBackend.Choice chooseBackend(String requested, List<String> gpuAddresses) {
    if ("tcp".equals(requested)) {
      // the TCP ring ignores GPUs: however many Spark assigned, there is nothing to check
      return DdpBackend.choose(requested, false, OptionalInt.empty(), "");
    }
    OptionalInt device = DdpBackend.sparkDevice(gpuAddresses);
    boolean cuda = Backend.loaded() == Backend.Kind.CUDA;
    return DdpBackend.choose(requested, cuda, device, DdpBackend.noSparkDeviceWhy());
  }

  /**
   * Joins NCCL on the assigned GPU: the unique id travels from rank 0 over the launcher's listeners
   * ({@link ListenerRendezvous}), like the TCP ring's addresses, which are then closed.
   */
  private static Communicator joinNccl(RankContext ctx, String host, DdpBackend.Choice backend) {
    try {
      // ND4J binds devices per thread; the recipe runs on this task thread
      Nd4j.getAffinityManager().unsafeSetDevice(backend.cudaDevice());
      CommSpec spec =
          new CommSpec(
              "nccl",
              ctx.rank(),
              ctx.worldSize(),
              host,
              ctx.jobSecret(),
              backend.cudaDevice(),
              TcpRingOptions.defaults());
      return Communicators.create(spec, new ListenerRendezvous(ctx));
    } finally {
      try {
        ctx.listener().close();
      } catch (IOException e) {
        // closing a listener we are done with; nothing to recover
      }
    }
  }

  /**
   * Joins the TCP ring: a fresh listener on this executor's host, its address exchanged through the
   * launcher's listeners ({@link ListenerRendezvous}), which are closed once everyone is known.
   */
  private static Communicator join(RankContext ctx, String host) throws IOException {
    if (ctx.worldSize() == 1) {
      ctx.listener().close();
      return LocalCommunicator.group(1).get(0);
    }
    RingListener ring = RingListener.bind(host, 0);
    List<String> addresses;
    try {
      addresses = new ListenerRendezvous(ctx).allGather(ring.address());
    } catch (RuntimeException e) {
      ring.close();
      throw e;
    } finally {
      ctx.listener().close();
    }
    return ring.join(ctx.rank(), addresses, ctx.jobSecret(), TcpRingOptions.defaults());
  }

  /** A PrintStream that starts every line with {@code prefix} (executor logs carry the rank). */
  static PrintStream prefixed(PrintStream target, String prefix) {
    OutputStream lines =
        new OutputStream() {
          private final ByteArrayOutputStream line = new ByteArrayOutputStream();

          @Override
          public synchronized void write(int b) {
            line.write(b);
            if (b == '\n') {
              flushLine();
            }
          }

          @Override
          public synchronized void flush() {
            target.flush(); // a partial line waits for its newline, or for close
          }

          @Override
          public synchronized void close() {
            if (line.size() > 0) {
              line.write('\n');
              flushLine();
            }
          }

          private void flushLine() {
            target.print(prefix + line.toString(StandardCharsets.UTF_8));
            target.flush();
            line.reset();
          }
        };
    return new PrintStream(lines, true, StandardCharsets.UTF_8);
  }
}
