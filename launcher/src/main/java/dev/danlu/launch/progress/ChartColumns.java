package dev.danlu.launch.progress;

import java.util.Arrays;

/**
 * A curve downsampled for a chart {@code width} pixel columns wide: per column and per series the
 * minimum, the maximum (which came first, so a line through them keeps the order of the data) and
 * the last value, plus the EMA-smoothed loss at the column's last step and the overflow skips in
 * it. A spike survives however many steps share its column, and what the browser gets grows with
 * the width, not with the run: a million steps cost the same few hundred kilobytes as a thousand.
 */
final class ChartColumns {
  static final int LOSS = 0;
  static final int LR = 1;
  static final int GRAD_NORM = 2;
  static final int TOKENS_PER_SEC = 3;
  static final int LOSS_SCALE = 4;
  static final int SERIES = 5;

  /** TensorBoard's default smoothing weight: ema = w * ema + (1 - w) * loss (bias-corrected). */
  static final double EMA_WEIGHT = 0.9;

  final int width;
  final long firstStep;
  final long lastStep;
  final int[] count;
  final long[] stepLo;
  final long[] stepHi;
  final int[] skipped;
  final double[] ema;
  final double[][] min = new double[SERIES][];
  final double[][] max = new double[SERIES][];
  final double[][] last = new double[SERIES][];
  final boolean[][] minFirst = new boolean[SERIES][];

  private ChartColumns(int width, long firstStep, long lastStep) {
    this.width = width;
    this.firstStep = firstStep;
    this.lastStep = lastStep;
    count = new int[width];
    stepLo = new long[width];
    stepHi = new long[width];
    skipped = new int[width];
    ema = new double[width];
    Arrays.fill(ema, Double.NaN);
    for (int s = 0; s < SERIES; s++) {
      min[s] = filled(width, Double.NaN);
      max[s] = filled(width, Double.NaN);
      last[s] = filled(width, Double.NaN);
      minFirst[s] = new boolean[width];
    }
  }

  /** Downsamples {@code curve} (non-empty) into {@code width} columns over its step range. */
  static ChartColumns of(StepCurve curve, int width) {
    int n = curve.size();
    ChartColumns c = new ChartColumns(width, curve.stepAt(0), curve.stepAt(n - 1));
    double span = (double) (c.lastStep - c.firstStep + 1);
    double emaAcc = 0;
    double emaNorm = 0;
    for (int i = 0; i < n; i++) {
      long step = curve.stepAt(i);
      int col = (int) Math.min(width - 1, (long) ((step - c.firstStep) * width / span));
      if (c.count[col]++ == 0) {
        c.stepLo[col] = step;
      }
      c.stepHi[col] = step;
      if (curve.skipped(i)) {
        c.skipped[col]++;
      }
      double loss = curve.loss(i);
      if (!Double.isNaN(loss)) {
        emaAcc = EMA_WEIGHT * emaAcc + (1 - EMA_WEIGHT) * loss;
        emaNorm = EMA_WEIGHT * emaNorm + (1 - EMA_WEIGHT);
        c.ema[col] = emaAcc / emaNorm;
      }
      c.add(LOSS, col, loss);
      c.add(LR, col, curve.lr(i));
      c.add(GRAD_NORM, col, curve.gradNorm(i));
      double tps = curve.tokensPerSec(i);
      c.add(TOKENS_PER_SEC, col, tps > 0 ? tps : Double.NaN);
      c.add(LOSS_SCALE, col, curve.lossScale(i));
    }
    return c;
  }

  private void add(int s, int col, double v) {
    if (Double.isNaN(v) || Double.isInfinite(v)) {
      return;
    }
    if (Double.isNaN(min[s][col])) {
      min[s][col] = v;
      max[s][col] = v;
      minFirst[s][col] = true;
    } else {
      if (v < min[s][col]) {
        min[s][col] = v;
        minFirst[s][col] = false; // the max came before this new min
      }
      if (v > max[s][col]) {
        max[s][col] = v;
        minFirst[s][col] = true;
      }
    }
    last[s][col] = v;
  }

  /** True when series {@code s} has at least one finite value. */
  boolean has(int s) {
    for (double v : last[s]) {
      if (!Double.isNaN(v)) {
        return true;
      }
    }
    return false;
  }

  /** The column a step falls in. */
  int columnOf(long step) {
    double span = (double) (lastStep - firstStep + 1);
    return (int) Math.max(0, Math.min(width - 1, (long) ((step - firstStep) * width / span)));
  }

  private static double[] filled(int n, double v) {
    double[] a = new double[n];
    Arrays.fill(a, v);
    return a;
  }
}
