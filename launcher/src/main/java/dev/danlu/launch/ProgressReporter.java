package dev.danlu.launch;

/**
 * Where a rank reports its training progress. The launcher's implementation never blocks the caller
 * on the network: the newest report replaces an unsent older one.
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

  /** A reporter that drops everything (for running a RankWork outside the launcher). */
  ProgressReporter NONE = (step, maxSteps, loss, tokensPerSec, etaSeconds, stepSeconds) -> {};
}
