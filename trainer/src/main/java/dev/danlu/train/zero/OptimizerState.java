package dev.danlu.train.zero;

import java.util.List;

/**
 * One rank's optimizer state in a world-size-independent form: its partition cut back into
 * per-parameter slices, each addressed by parameter name and element offset inside that parameter.
 * The union of all ranks' slices covers every trainable element exactly once, whatever the world
 * size that wrote them, so a run saved on N ranks resumes on M (each new rank copies the overlaps
 * with its own partition).
 *
 * @param appliedSteps optimizer updates actually applied (Adam's t, the LR schedule position)
 * @param lossScaler {@link dev.danlu.train.optim.DynamicLossScaler#state()}
 */
public record OptimizerState(long appliedSteps, double[] lossScaler, List<Slice> slices) {

  /** Elements {@code [start, start + master.length)} of parameter {@code name}. */
  public record Slice(String name, int start, float[] master, float[] expAvg, float[] expAvgSq) {}
}
