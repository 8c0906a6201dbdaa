package dev.danlu.train.recipe;

import dev.danlu.train.optim.DynamicLossScaler;
import dev.danlu.train.zero.Zero2Optimizer;
import java.io.PrintStream;
import java.util.Locale;

/**
 * Per-step progress: every step goes to the {@link ProgressListener}; every {@code logging_steps}
 * (and the first step) rank 0 prints loss, learning rate, gradient norm, loss scale, throughput of
 * the whole job and the ETA, like Hugging Face's Trainer log lines, plus the mean split of a step
 * into forward+backward (all micro-batches) and optimizer (gradient hand-over, ZeRO-2 step with its
 * collectives, parameter copy-back) over the window.
 *
 * <p>A step skipped for an fp16 gradient overflow is always logged, logging step or not, with the
 * loss scale before and after (DeepSpeed's "OVERFLOW! ... Skipping step" line): a run whose scale
 * keeps falling is diverging, and the periodic line alone would hide the skips between its steps.
 */
final class StepLog {
  private final PrintStream out;
  private final int rank;
  private final int world;
  private final long total;
  private final long start;
  private final int every;
  private final boolean first;
  private final DynamicLossScaler scaler;
  private final long t0 = System.nanoTime();
  private long windowTokens;
  private long windowSteps;
  private double windowFwdBwd;
  private double windowOpt;
  private long windowStart = System.nanoTime();

  StepLog(
      PrintStream out,
      int rank,
      int world,
      long total,
      long start,
      int every,
      boolean first,
      DynamicLossScaler scaler) {
    this.scaler = scaler;
    this.out = out;
    this.rank = rank;
    this.world = world;
    this.total = total;
    this.start = start;
    this.every = every;
    this.first = first;
  }

  void step(
      long done,
      double loss,
      Zero2Optimizer.StepResult r,
      long tokens,
      double secs,
      double forwardBackwardSecs,
      double optimizerSecs,
      ProgressListener progress) {
    windowTokens += tokens;
    windowSteps++;
    windowFwdBwd += forwardBackwardSecs;
    windowOpt += optimizerSecs;
    double elapsed = (System.nanoTime() - t0) / 1e9;
    double eta = (total - done) * elapsed / Math.max(1, done - start);
    progress.onStep(
        new ProgressListener.StepStats(
            done,
            total,
            loss,
            r.lr(),
            r.gradNorm(),
            scaler.enabled() ? r.lossScale() : Double.NaN,
            r.skipped(),
            tokens / Math.max(secs, 1e-9),
            eta,
            secs));
    if (rank == 0 && r.skipped()) {
      out.printf(
          Locale.ROOT,
          "[rank %d] step %d/%d: gradient overflow at loss scale %s, optimizer step and LR"
              + " schedule skipped (%d steps applied); loss scale now %s, hysteresis %d left%n",
          rank,
          done,
          total,
          scaleText(r.lossScale()),
          r.appliedSteps(),
          scaleText(scaler.scale()),
          scaler.hysteresisLeft());
    }
    boolean due = (every > 0 && done % every == 0) || (first && done == start + 1) || done == total;
    if (rank == 0 && due) {
      double window = (System.nanoTime() - windowStart) / 1e9;
      out.printf(
          Locale.ROOT,
          "[rank %d] step %d/%d loss %.4f lr %.3e grad_norm %.4f loss_scale %.0f%s tokens/s %.0f"
              + " eta %s (per step: forward+backward %.1f ms, optimizer %.1f ms)%n",
          rank,
          done,
          total,
          loss,
          r.lr(),
          r.gradNorm(),
          r.lossScale(),
          r.skipped() ? " (overflow: step skipped)" : "",
          windowTokens * world / Math.max(window, 1e-9),
          hms(eta),
          1e3 * windowFwdBwd / windowSteps,
          1e3 * windowOpt / windowSteps);
      windowTokens = 0;
      windowSteps = 0;
      windowFwdBwd = 0;
      windowOpt = 0;
      windowStart = System.nanoTime();
    }
  }

  /** A power-of-two scale as an integer when it is one (65536), else in 3 significant digits. */
  static String scaleText(double scale) {
    return scale >= 1 && scale == Math.rint(scale)
        ? Long.toString((long) scale)
        : String.format(Locale.ROOT, "%.3g", scale);
  }

  private static String hms(double s) {
    long t = Math.round(s);
    return String.format(Locale.ROOT, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
  }
}
