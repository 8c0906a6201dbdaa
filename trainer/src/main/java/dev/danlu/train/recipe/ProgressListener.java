package dev.danlu.train.recipe;

/**
 * Receives each rank's progress after every optimizer step (the launcher forwards it to the
 * driver's console and UI), and rank 0's training events: evaluations, committed checkpoints, the
 * step a run resumed from. The six-number {@link #onStep(long, long, double, double, double,
 * double)} is the one abstract method (a lambda is a listener); {@link #onStep(StepStats)} carries
 * the optimizer's view of the step too and by default forwards to it.
 */
@FunctionalInterface
public interface ProgressListener {
  /**
   * One optimizer step as the loop saw it.
   *
   * @param step optimizer steps completed since the start of training (not of this attempt)
   * @param maxSteps total optimizer steps of the run
   * @param loss this step's training loss averaged over all ranks (NaN when no rank had a label)
   * @param lr the learning rate the step used
   * @param gradNorm global gradient norm before clipping (unscaled)
   * @param lossScale the fp16 loss scale the step ran at; NaN when fp16 is off
   * @param skipped true when an fp16 overflow skipped the optimizer step
   * @param tokensPerSec this rank's training tokens per second over the step
   * @param etaSeconds estimated seconds to the end of training
   * @param stepSeconds wall time of the step on this rank
   */
  record StepStats(
      long step,
      long maxSteps,
      double loss,
      double lr,
      double gradNorm,
      double lossScale,
      boolean skipped,
      double tokensPerSec,
      double etaSeconds,
      double stepSeconds) {}

  /**
   * @param step optimizer steps completed since the start of training (not of this attempt)
   * @param maxSteps total optimizer steps of the run
   * @param loss this step's training loss averaged over all ranks when known, else this rank's
   * @param tokensPerSec this rank's training tokens per second over the last step
   * @param etaSeconds estimated seconds to the end of training
   * @param stepSeconds wall time of the step on this rank
   */
  void onStep(
      long step,
      long maxSteps,
      double loss,
      double tokensPerSec,
      double etaSeconds,
      double stepSeconds);

  /** Every step, with learning rate, gradient norm, loss scale and overflow skip. */
  default void onStep(StepStats s) {
    onStep(s.step(), s.maxSteps(), s.loss(), s.tokensPerSec(), s.etaSeconds(), s.stepSeconds());
  }

  /** Rank 0, after an evaluation at {@code step}: mean validation loss per token over tokens. */
  default void onEval(long step, double loss, long tokens) {}

  /** Rank 0, once checkpoint {@code dir} for {@code step} is committed (every rank's part). */
  default void onCheckpoint(long step, String dir) {}

  /** Rank 0, when the run continues from the committed checkpoint {@code dir} at {@code step}. */
  default void onResume(long step, String dir) {}

  ProgressListener NONE = (step, maxSteps, loss, tokensPerSec, etaSeconds, stepSeconds) -> {};
}
