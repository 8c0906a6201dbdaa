package dev.danlu.launch.trainer;

import dev.danlu.launch.RankContext;
import dev.danlu.launch.RankWork;
import dev.danlu.train.comm.Communicator;
import dev.danlu.train.comm.LocalCommunicator;
import dev.danlu.train.comm.RingListener;
import dev.danlu.train.comm.TcpRingOptions;
import dev.danlu.train.config.ConfigLoader;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.recipe.PretrainRecipe;
import dev.danlu.train.recipe.TrainContext;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;

/**
 * The trainer as a Spark barrier task: the thin adapter from the launcher's {@link RankContext} to
 * the trainer's {@link PretrainRecipe}, which runs unchanged (and resumes from the newest committed
 * checkpoint under output_dir, as a retried stage requires).
 *
 * <p>The TCP ring listens on a port of its own; its address travels to the other ranks over the
 * listener the launcher bound and published through the barrier's allGather ({@link
 * ListenerRendezvous}). Re-binding the published port instead races: a peer's connection queued on
 * the old socket is reset when it closes.
 *
 * <p>Env {@code DANLU_STEP_DELAY_MS} (as for {@code danlu worker}) slows every step down: the
 * cluster test kills an executor mid-run and needs a run that lasts ({@code spark.executorEnv.…}).
 */
public final class TrainerRankWork implements RankWork {
  @Override
  public String run(RankContext ctx) throws Exception {
    TrainConfig config =
        ConfigLoader.load(ctx.configYaml(), ctx.configSource(), ctx.overrides()).config();
    String kind = config.communicator() == null ? "tcp" : config.communicator();
    if (!kind.equals("tcp")) {
      throw new IllegalArgumentException(
          "communicator '"
              + kind
              + "' is not wired into the Spark launcher yet; use communicator=tcp");
    }
    String mine = ctx.peerAddresses().get(ctx.rank());
    String host = mine.substring(0, mine.lastIndexOf(':'));
    PrintStream log = prefixed(System.err, ctx.logPrefix() + " ");
    long delayMillis = Long.parseLong(System.getenv().getOrDefault("DANLU_STEP_DELAY_MS", "0"));
    try (Communicator comm = join(ctx, host)) {
      PretrainRecipe.Result r =
          new PretrainRecipe(log)
              .run(
                  new TrainContext(
                      ctx.rank(),
                      ctx.worldSize(),
                      comm,
                      config,
                      (step, max, loss, tps, eta, secs) -> {
                        ctx.progress().report(step, max, loss, tps, eta, secs);
                        pause(delayMillis);
                      }));
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
