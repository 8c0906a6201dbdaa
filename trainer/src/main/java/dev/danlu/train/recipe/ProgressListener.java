package dev.danlu.train.recipe;

/**
 * Receives each rank's progress after every optimizer step (the launcher forwards it to the
 * driver's console and UI). Same parameters as the launcher's {@code ProgressReporter}, so the
 * adapter between them is one lambda.
 */
@FunctionalInterface
public interface ProgressListener {
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

  ProgressListener NONE = (step, maxSteps, loss, tokensPerSec, etaSeconds, stepSeconds) -> {};
}
