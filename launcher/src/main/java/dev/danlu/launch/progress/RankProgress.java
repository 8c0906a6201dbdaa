package dev.danlu.launch.progress;

/**
 * One progress report of one rank, as it travels from the executor to the driver.
 *
 * @param receivedAtMillis driver clock when the report arrived (0 on the executor side)
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
    long receivedAtMillis) {

  RankProgress received(long now) {
    return new RankProgress(
        rank, attempt, step, maxSteps, loss, tokensPerSec, etaSeconds, stepSeconds, now);
  }
}
