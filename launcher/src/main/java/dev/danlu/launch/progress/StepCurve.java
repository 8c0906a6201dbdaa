package dev.danlu.launch.progress;

import java.util.Arrays;

/**
 * Every step of the run in columns (about 33 bytes a step: a million-step run costs the driver some
 * 33 MB, not a million objects), in step order. Reports of one step from several ranks merge into
 * one point; a retried attempt that resumes from an earlier checkpoint rewinds the curve to the
 * step it resumes from, so the curve shows what the final model went through.
 */
final class StepCurve {
  private long[] step = new long[256];
  private float[] loss = new float[256];
  private float[] lr = new float[256];
  private float[] gradNorm = new float[256];
  private float[] lossScale = new float[256];
  private float[] tokensPerSec = new float[256];
  private short[] ranks = new short[256];
  private boolean[] skipped = new boolean[256];
  private int n;
  private int dirtyFrom; // smallest index changed since the last takeChanges

  int size() {
    return n;
  }

  long stepAt(int i) {
    return step[i];
  }

  CurvePoint get(int i) {
    return new CurvePoint(
        step[i], loss[i], lr[i], gradNorm[i], lossScale[i], skipped[i], tokensPerSec[i], ranks[i]);
  }

  double loss(int i) {
    return loss[i];
  }

  double lr(int i) {
    return lr[i];
  }

  double gradNorm(int i) {
    return gradNorm[i];
  }

  double lossScale(int i) {
    return lossScale[i];
  }

  double tokensPerSec(int i) {
    return tokensPerSec[i];
  }

  boolean skipped(int i) {
    return skipped[i];
  }

  /**
   * Adds one rank's report of a step.
   *
   * @param rewind the first report of a new attempt: forget the steps from this one on
   * @return true when the step was new to the curve (its first report)
   */
  boolean add(RankProgress p, boolean rewind) {
    int i = find(p.step());
    if (rewind) {
      truncate(i >= 0 ? i : -i - 1);
      i = -n - 1;
    }
    if (i >= 0) {
      if (Float.isNaN(loss[i]) && !Double.isNaN(p.loss())) {
        loss[i] = (float) p.loss();
        dirty(i);
      }
      if (!Double.isNaN(p.tokensPerSec())) {
        tokensPerSec[i] += (float) p.tokensPerSec();
        ranks[i]++;
        dirty(i);
      }
      return false;
    }
    int at = -i - 1;
    if (at != n) {
      return false; // a late report of a step not on the curve: rare, and harmless to drop
    }
    put(
        new CurvePoint(
            p.step(),
            p.loss(),
            p.lr(),
            p.gradNorm(),
            p.fp16() ? p.lossScale() : Double.NaN,
            p.skipped(),
            Double.isNaN(p.tokensPerSec()) ? 0 : p.tokensPerSec(),
            Double.isNaN(p.tokensPerSec()) ? 0 : 1));
    return true;
  }

  /** Replaces the curve from {@code points.get(0).step()} on with {@code points} (a replay). */
  void replaceFrom(java.util.List<CurvePoint> points) {
    if (points.isEmpty()) {
      return;
    }
    int i = find(points.get(0).step());
    truncate(i >= 0 ? i : -i - 1);
    for (CurvePoint p : points) {
      put(p);
    }
  }

  /** The points changed since the last call, from the first changed one to the end. */
  java.util.List<CurvePoint> takeChanges() {
    java.util.List<CurvePoint> out = new java.util.ArrayList<>(n - dirtyFrom);
    for (int i = dirtyFrom; i < n; i++) {
      out.add(get(i));
    }
    dirtyFrom = n;
    return out;
  }

  private void put(CurvePoint p) {
    if (n == step.length) {
      int cap = n * 2;
      step = Arrays.copyOf(step, cap);
      loss = Arrays.copyOf(loss, cap);
      lr = Arrays.copyOf(lr, cap);
      gradNorm = Arrays.copyOf(gradNorm, cap);
      lossScale = Arrays.copyOf(lossScale, cap);
      tokensPerSec = Arrays.copyOf(tokensPerSec, cap);
      ranks = Arrays.copyOf(ranks, cap);
      skipped = Arrays.copyOf(skipped, cap);
    }
    step[n] = p.step();
    loss[n] = (float) p.loss();
    lr[n] = (float) p.lr();
    gradNorm[n] = (float) p.gradNorm();
    lossScale[n] = (float) p.lossScale();
    skipped[n] = p.skipped();
    tokensPerSec[n] = (float) p.tokensPerSec();
    ranks[n] = (short) p.ranks();
    dirty(n);
    n++;
  }

  private void truncate(int to) {
    if (to < n) {
      n = to;
      dirtyFrom = Math.min(dirtyFrom, n);
    }
  }

  private void dirty(int i) {
    dirtyFrom = Math.min(dirtyFrom, i);
  }

  /** Binary search: the index of {@code s}, or (-(insertion point) - 1). */
  private int find(long s) {
    if (n > 0 && step[n - 1] < s) {
      return -n - 1; // the usual case: a new step at the end
    }
    return Arrays.binarySearch(step, 0, n, s);
  }
}
