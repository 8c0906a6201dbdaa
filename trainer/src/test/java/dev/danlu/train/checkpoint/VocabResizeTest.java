package dev.danlu.train.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

class VocabResizeTest {
  static final int COLS = 64;

  @Test
  void newRowsDependOnSeedAndRowIdNotOnTargetSize() {
    float[] old = SafeTensorsTest.random(10 * COLS, 1);
    float[] a = VocabResize.resize(old, 10, COLS, 20, VocabResize.Init.NORMAL, 0.02, 42);
    float[] b = VocabResize.resize(old, 10, COLS, 300, VocabResize.Init.NORMAL, 0.02, 42);
    assertArrayEquals(old, Arrays.copyOf(a, old.length), "old rows kept");
    assertArrayEquals(a, Arrays.copyOf(b, a.length), "rows 10..19 identical for 20 and 300 rows");
    float[] c = VocabResize.resize(old, 10, COLS, 20, VocabResize.Init.NORMAL, 0.02, 43);
    assertFalse(Arrays.equals(a, c), "another seed gives other rows");
    // Growing from a different old size still gives row 15 the same values.
    float[] d =
        VocabResize.resize(
            Arrays.copyOf(old, 5 * COLS), 5, COLS, 20, VocabResize.Init.NORMAL, 0.02, 42);
    assertArrayEquals(
        Arrays.copyOfRange(a, 15 * COLS, 16 * COLS), Arrays.copyOfRange(d, 15 * COLS, 16 * COLS));
  }

  @Test
  void normalRowsHaveTheRequestedDistribution() {
    int rows = 4000;
    float[] m =
        VocabResize.resize(new float[COLS], 1, COLS, rows + 1, VocabResize.Init.NORMAL, 0.02, 7);
    double sum = 0;
    double sq = 0;
    double quart = 0;
    int n = rows * COLS;
    for (int i = COLS; i < m.length; i++) {
      sum += m[i];
      sq += (double) m[i] * m[i];
      quart += Math.pow(m[i], 4);
    }
    double mean = sum / n;
    double var = sq / n - mean * mean;
    // 256k samples: the mean's standard error is 0.02/512 ≈ 4e-5; std within 0.5%.
    assertEquals(0, mean, 2e-4);
    assertEquals(0.02, Math.sqrt(var), 0.0001);
    // Kurtosis 3 for a normal (a uniform would give 1.8).
    assertEquals(3.0, quart / n / (var * var), 0.1);
  }

  @Test
  void meanInitAndShrinking() {
    float[] old = {1, 2, 3, 5, 7, 9}; // 3 rows x 2
    float[] grown = VocabResize.resize(old, 3, 2, 5, VocabResize.Init.MEAN, 0.02, 0);
    assertArrayEquals(new float[] {1, 2, 3, 5, 7, 9, 11f / 3, 16f / 3, 11f / 3, 16f / 3}, grown);
    assertArrayEquals(
        new float[] {1, 2, 3, 5},
        VocabResize.resize(old, 3, 2, 2, VocabResize.Init.NORMAL, 0.02, 0));
    assertThrows(
        IllegalArgumentException.class,
        () -> VocabResize.resize(old, 2, 2, 4, VocabResize.Init.MEAN, 0.02, 0));
  }
}
