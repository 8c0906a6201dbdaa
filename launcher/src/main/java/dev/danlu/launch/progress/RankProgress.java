package dev.danlu.launch.progress;

import com.fasterxml.jackson.annotation.JsonCreator;

/**
 * One progress report of one rank, as it travels from the executor to the driver.
 *
 * @param receivedAtMillis driver clock when the report arrived (0 on the executor side)
 * @param failure null for a progress report; else why this rank failed (its root cause), sent
 *     before the task fails so the driver can name the real cause even when Spark reports another
 *     rank's consequence (a broken pipe to the dead rank) first
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
    String failure) {

  @JsonCreator
  public RankProgress {}

  /** A progress report (no failure). */
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
        null);
  }

  /** A failure report of {@code rank} in {@code attempt}. */
  public static RankProgress failure(int rank, int attempt, String why) {
    return new RankProgress(
        rank, attempt, -1, -1, Double.NaN, Double.NaN, Double.NaN, Double.NaN, 0, why);
  }

  RankProgress received(long now) {
    return new RankProgress(
        rank, attempt, step, maxSteps, loss, tokensPerSec, etaSeconds, stepSeconds, now, failure);
  }
}
