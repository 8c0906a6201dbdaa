package dev.danlu.launch.progress;

import com.fasterxml.jackson.annotation.JsonCreator;

/**
 * One progress report of one rank, as it travels from the executor to the driver.
 *
 * @param attempt the launcher attempt the rank runs in, 1 for the first (the numbering of every
 *     console line, the tab, the job description and the metrics)
 * @param receivedAtMillis driver clock when the report arrived (0 on the executor side)
 * @param failure null for a progress report; else why this rank failed (its root cause), sent
 *     before the task fails so the driver can name the real cause even when Spark reports another
 *     rank's consequence (a broken pipe to the dead rank) first
 * @param lr learning rate of the step (NaN when the work does not say)
 * @param gradNorm global gradient norm of the step (NaN when unknown)
 * @param lossScale fp16 loss scale the step ran at (NaN, or ≤ 0 from older senders: not fp16)
 * @param skipped an fp16 overflow skipped this optimizer step
 */
public record RankProgress(
    int rank,
    int attempt,
    long step,
    long maxSteps,
    double loss,
    double tokensPerSec,
    double etaSeconds,
    double stepSeconds,
    long receivedAtMillis,
    String failure,
    double lr,
    double gradNorm,
    double lossScale,
    boolean skipped) {

  @JsonCreator
  public RankProgress {}

  /** A progress report (no failure) with only the numbers every RankWork knows. */
  public RankProgress(
      int rank,
      int attempt,
      long step,
      long maxSteps,
      double loss,
      double tokensPerSec,
      double etaSeconds,
      double stepSeconds,
      long receivedAtMillis) {
    this(
        rank,
        attempt,
        step,
        maxSteps,
        loss,
        tokensPerSec,
        etaSeconds,
        stepSeconds,
        receivedAtMillis,
        null,
        Double.NaN,
        Double.NaN,
        Double.NaN,
        false);
  }

  /** A failure report of {@code rank} in {@code attempt}. */
  public static RankProgress failure(int rank, int attempt, String why) {
    return new RankProgress(
        rank,
        attempt,
        -1,
        -1,
        Double.NaN,
        Double.NaN,
        Double.NaN,
        Double.NaN,
        0,
        why,
        Double.NaN,
        Double.NaN,
        Double.NaN,
        false);
  }

  RankProgress received(long now) {
    return new RankProgress(
        rank,
        attempt,
        step,
        maxSteps,
        loss,
        tokensPerSec,
        etaSeconds,
        stepSeconds,
        now,
        failure,
        lr,
        gradNorm,
        lossScale,
        skipped);
  }

  /** True when the step ran under fp16 loss scaling. */
  boolean fp16() {
    return lossScale > 0 && !Double.isInfinite(lossScale);
  }
}
