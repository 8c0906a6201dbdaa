package dev.danlu.testkit;

import java.util.Map;

/**
 * Float comparisons for tests, with the tolerance arithmetic written down once.
 *
 * <p>Where a test may assert bitwise equality: only where both sides run the same operations in the
 * same order on the same shapes (then any deterministic BLAS gives the same bits), or where the
 * values are produced without reductions (copies, elementwise maps, integers). Everywhere else
 * OpenBLAS may block and accumulate a product differently for another batch shape or thread count
 * (its kernels are chosen per CPU: {@code OPENBLAS_CORETYPE}), and the comparison needs a
 * tolerance.
 */
public final class Floats {
  /** Unit roundoff of float32: 2^-24. */
  public static final double U32 = 0x1p-24;

  private Floats() {}

  /**
   * Bound on the change of a float32 sum of {@code k} terms when its order changes, relative to the
   * sum of the terms' magnitudes: {@code 2·(k-1)·u} (each order is within {@code (k-1)·u} of the
   * exact sum; Higham, Accuracy and Stability, eq. 4.4).
   */
  public static double reorderBound(int k) {
    return 2.0 * (k - 1) * U32;
  }

  /** Largest |v|. */
  public static double maxAbs(float[] a) {
    double m = 0;
    for (float v : a) {
      m = Math.max(m, Math.abs(v));
    }
    return m;
  }

  /** Largest |a[i] - b[i]|. */
  public static double maxAbsDiff(float[] a, float[] b) {
    check(a, b);
    double m = 0;
    for (int i = 0; i < a.length; i++) {
      m = Math.max(m, Math.abs((double) a[i] - b[i]));
    }
    return m;
  }

  /** ‖a − b‖₂ / ‖b‖₂ (b the reference). */
  public static double relError(float[] a, float[] b) {
    check(a, b);
    double d = 0;
    double n = 0;
    for (int i = 0; i < b.length; i++) {
      double e = (double) a[i] - b[i];
      d += e * e;
      n += (double) b[i] * b[i];
    }
    return Math.sqrt(d) / Math.max(Math.sqrt(n), 1e-30);
  }

  /** The worst {@link #relError} over tensors with the same names (b the reference). */
  public static double relError(Map<String, float[]> a, Map<String, float[]> b) {
    if (!a.keySet().equals(b.keySet())) {
      throw new AssertionError("different tensors: " + a.keySet() + " vs " + b.keySet());
    }
    double worst = 0;
    for (String k : b.keySet()) {
      worst = Math.max(worst, relError(a.get(k), b.get(k)));
    }
    return worst;
  }

  /** How many representable float32 values lie between a and b (0 = same bits up to ±0). */
  public static long ulpDistance(float a, float b) {
    if (Float.isNaN(a) || Float.isNaN(b)) {
      return Float.isNaN(a) && Float.isNaN(b) ? 0 : Long.MAX_VALUE;
    }
    return Math.abs(ordered(a) - ordered(b));
  }

  /** The largest {@link #ulpDistance} over two arrays. */
  public static long maxUlpDistance(float[] a, float[] b) {
    check(a, b);
    long m = 0;
    for (int i = 0; i < a.length; i++) {
      m = Math.max(m, ulpDistance(a[i], b[i]));
    }
    return m;
  }

  /** Maps float bits onto a line where adjacent floats differ by 1 (−0 and +0 both 0). */
  private static long ordered(float f) {
    int bits = Float.floatToRawIntBits(f);
    return bits >= 0 ? bits : -(long) (bits & 0x7fffffff);
  }

  private static void check(float[] a, float[] b) {
    if (a.length != b.length) {
      throw new AssertionError("lengths differ: " + a.length + " vs " + b.length);
    }
  }
}
