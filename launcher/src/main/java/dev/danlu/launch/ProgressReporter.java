package dev.danlu.launch;

import dev.danlu.train.recipe.ProgressListener;

/**
 * Where a rank reports its training progress. The launcher's implementation never blocks the caller
 * on the network: reports queue up (bounded) and a background thread sends them.
 */
@FunctionalInterface
public interface ProgressReporter {
  /**
   * @param step optimizer steps completed (counting from the start of training, not of this
   *     attempt)
   * @param maxSteps total optimizer steps of the run
   * @param loss the training loss of the last step (NaN if unknown)
   * @param tokensPerSec this rank's throughput over the last logging window
   * @param etaSeconds estimated seconds to the end of training (NaN if unknown)
   * @param stepSeconds wall time of the last optimizer step on this rank
   */
  void report(
      long step,
      long maxSteps,
      double loss,
      double tokensPerSec,
      double etaSeconds,
      double stepSeconds);

  /** A step with the optimizer's numbers (lr, gradient norm, loss scale, overflow skip). */
  default void step(ProgressListener.StepStats s) {
    report(s.step(), s.maxSteps(), s.loss(), s.tokensPerSec(), s.etaSeconds(), s.stepSeconds());
  }

  /**
   * A training event for the driver's timeline ({@code kind} one of {@code TrainingEvent}'s kinds:
   * checkpoint, eval, resume).
   */
  default void event(String kind, long step, String text, double value) {}

  /** The trainer's listener that forwards everything here ({@code pause} runs after each step). */
  default ProgressListener asListener(Runnable afterStep) {
    ProgressReporter r = this;
    return new ProgressListener() {
      @Override
      public void onStep(long step, long max, double loss, double tps, double eta, double secs) {
        r.report(step, max, loss, tps, eta, secs);
        afterStep.run();
      }

      @Override
      public void onStep(StepStats s) {
        r.step(s);
        afterStep.run();
      }

      @Override
      public void onEval(long step, double loss, long tokens) {
        r.event(
            dev.danlu.launch.progress.TrainingEvent.EVAL,
            step,
            String.format(
                java.util.Locale.ROOT,
                "eval_loss %.4f perplexity %.3f (%d tokens)",
                loss,
                Math.exp(loss),
                tokens),
            loss);
      }

      @Override
      public void onCheckpoint(long step, String dir) {
        r.event(dev.danlu.launch.progress.TrainingEvent.CHECKPOINT, step, dir, Double.NaN);
      }

      @Override
      public void onResume(long step, String dir) {
        r.event(
            dev.danlu.launch.progress.TrainingEvent.RESUME,
            step,
            "resumed from " + dir + " at step " + step,
            Double.NaN);
      }
    };
  }

  /** A reporter that drops everything (for running a RankWork outside the launcher). */
  ProgressReporter NONE = (step, maxSteps, loss, tokensPerSec, etaSeconds, stepSeconds) -> {};
}
