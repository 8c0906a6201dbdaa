package dev.danlu.train.tensor;

/**
 * exp over float arrays in loops the JIT vectorises: Cody–Waite range reduction x = k·ln2 + r, |r|
 * ≤ ln2/2, a degree-7 Taylor polynomial for e^r (truncation r⁸/8! < 2e-8 of e^r there) and 2^k put
 * straight into the exponent bits. {@code Math.exp} is a scalar call of ~6 ns per value on this
 * machine and was most of the tiled attention's Java time (one exponential per visible score,
 * forward and again backward); this runs at ~1.5 ns.
 *
 * <p>Accuracy, for arguments v in [−87, 0]: within 2.5e-7 + 2^-23·|v| relative of e^v (a few float
 * ulps from the polynomial in float arithmetic, plus the argument's own float rounding, which
 * matters only for the small weights far below the row maximum; checked on a dense grid by {@code
 * FastExpTest}). Below −87 the result is e^−87 ≈ 1.6e-38 (the smallest normal float's
 * neighbourhood) rather than a denormal or 0: as a softmax weight next to a row maximum of 1 that
 * is below float resolution of any sum it enters. Callers zero masked entries themselves.
 */
public final class FastExp {
  private static final float LOG2E = 1.44269504f;

  /** 1.5·2^23: adding and subtracting it rounds a float of magnitude < 2^22 to an integer. */
  private static final float SHIFTER = 12582912f;

  /** ln2 split so that k·LN2_HI is exact for |k| < 2^12 (LN2_HI has 11 significant bits). */
  private static final float LN2_HI = 0.693359375f;

  private static final float LN2_LO = -2.12194440e-4f;
  private static final float LOWEST = -87.0f;

  private FastExp() {}

  /**
   * y[i] = exp(scale · x[i] − shift) for i in [0, n); {@code k} is scratch of at least n floats.
   * The argument is formed as fma(x, sHi, −shiftHi) + fma(x, sLo, −shiftLo) with scale and shift
   * each split into a float and its float remainder: near the row maximum, where the weights that
   * matter are, x·scale and shift nearly cancel, and rounding either to float first would put an
   * error of ~1e-6 of their size (|x·scale| of 20 is common) into every weight. Arguments above 0
   * are allowed up to ~88 (overflow beyond), below −87 clamp (see the class).
   */
  public static void exp(float[] x, float[] y, float[] k, int n, double scale, double shift) {
    float sHi = (float) scale;
    float sLo = (float) (scale - sHi);
    float hHi = (float) shift;
    float hLo = (float) (shift - hHi);
    // two loops: with the exponent's bit construction in the same loop the JIT gave up on
    // vectorising (5.9 ns per value), split they run at ~1.5 ns together
    for (int i = 0; i < n; i++) {
      float xi = x[i];
      float v = Math.max(Math.fma(xi, sHi, -hHi) + Math.fma(xi, sLo, -hLo), LOWEST);
      float kf = (v * LOG2E + SHIFTER) - SHIFTER;
      float r = v - kf * LN2_HI - kf * LN2_LO;
      y[i] =
          1.0f
              + r
                  * (1.0f
                      + r
                          * (0.5f
                              + r
                                  * (1.6666667e-1f
                                      + r
                                          * (4.1666668e-2f
                                              + r
                                                  * (8.3333338e-3f
                                                      + r
                                                          * (1.3888889e-3f
                                                              + r * 1.9841270e-4f))))));
      k[i] = kf;
    }
    for (int i = 0; i < n; i++) {
      y[i] *= Float.intBitsToFloat(((int) k[i] + 127) << 23);
    }
  }

  /**
   * Σ x[0, n) in double, in four interleaved partial sums combined as (s0 + s1) + (s2 + s3): a
   * fixed order, so the same inputs give the same bits, without one long chain of dependent adds.
   */
  public static double sum(float[] x, int n) {
    double s0 = 0;
    double s1 = 0;
    double s2 = 0;
    double s3 = 0;
    int i = 0;
    for (; i + 3 < n; i += 4) {
      s0 += x[i];
      s1 += x[i + 1];
      s2 += x[i + 2];
      s3 += x[i + 3];
    }
    for (; i < n; i++) {
      s0 += x[i];
    }
    return (s0 + s1) + (s2 + s3);
  }
}
