package dev.danlu.train.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** {@link FastExp} against {@code Math.exp} in double. */
class FastExpTest {
  @Test
  void withinAFewFloatUlpsOfMathExpOverTheSoftmaxRange() {
    // arguments scale·x − shift on a dense grid of [−87, 0] (a softmax row's weights), formed the
    // way the tiled attention forms them: a float score, the 1/sqrt(128) scale, a double shift
    int n = 1 << 20;
    float[] x = new float[n];
    float[] y = new float[n];
    float[] k = new float[n];
    double scale = 1.0 / Math.sqrt(128);
    double shift = 3.7312345678;
    for (int i = 0; i < n; i++) {
      x[i] = (float) ((shift - 87.0 * i / (n - 1)) / scale);
    }
    FastExp.exp(x, y, k, n, scale, shift);
    double worst = 0;
    for (int i = 0; i < n; i++) {
      double v = x[i] * scale - shift;
      double want = Math.exp(v);
      // the argument is a float, rounded twice (the first fma and the sum of both): up to an ulp
      // of |v| (≤ 2^-23 |v|), an error of that much relative in e^v; the polynomial and the
      // result's rounding add a few float ulps (2.5e-7). Small weights (large |v|) are the less
      // exact ones, the row maximum's e^0 the most.
      double bound = 2.5e-7 + 0x1p-23 * Math.abs(v);
      worst = Math.max(worst, Math.abs(y[i] - want) / want / bound);
    }
    assertTrue(worst <= 1.0, "worst error " + worst + " of the bound");
    float[] zero = {0f};
    FastExp.exp(zero, zero, k, 1, 1.0, 0.0);
    assertEquals(1.0f, zero[0]); // e^0 exactly: the row maximum's weight
  }

  @Test
  void clampsFarBelowInsteadOfReturningGarbage() {
    float[] x = {-1000f, -88f, -87f};
    float[] y = new float[3];
    FastExp.exp(x, y, new float[3], 3, 1.0, 0.0);
    for (float v : y) {
      assertTrue(v > 0 && v < 2e-38f, "clamped to e^-87, got " + v);
    }
  }

  @Test
  void sumEqualsTheDoubleSumToRoundoff() {
    SplittableRandom r = new SplittableRandom(7);
    for (int n : new int[] {0, 1, 3, 4, 5, 1023}) {
      float[] x = new float[n];
      double want = 0;
      for (int i = 0; i < n; i++) {
        x[i] = (float) r.nextDouble();
        want += x[i];
      }
      // n < 2^20 float values summed in double: each partial sum is exact to 2^-53 relative
      assertEquals(want, FastExp.sum(x, n), 1e-13 * Math.max(1, want), "n = " + n);
    }
  }
}
