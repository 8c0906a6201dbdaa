package dev.danlu.launch.progress;

import com.fasterxml.jackson.annotation.JsonCreator;

/**
 * One optimizer step of the whole job: the loss (all ranks agree on it: it is all-reduced), the
 * optimizer's learning rate, gradient norm and loss scale, the overflow skip, and the job's
 * throughput (the sum over the {@code ranks} that reported the step).
 */
public record CurvePoint(
    long step,
    double loss,
    double lr,
    double gradNorm,
    double lossScale,
    boolean skipped,
    double tokensPerSec,
    int ranks) {
  @JsonCreator
  public CurvePoint {}
}
