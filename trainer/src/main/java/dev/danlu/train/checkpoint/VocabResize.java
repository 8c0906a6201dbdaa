package dev.danlu.train.checkpoint;

import java.util.SplittableRandom;

/**
 * Grows (or shrinks) an embedding or LM-head matrix [rows, cols] to a new vocabulary size, e.g.
 * LLaMA-2's 32000 rows to Chinese-LLaMA-2's 55296. New rows are either N(0, std²) — transformers
 * 4.35's {@code resize_token_embeddings}, std = initializer_range 0.02 — or the mean of the old
 * rows (newer transformers start from the mean; they add small covariance-shaped noise, which this
 * deliberately does not).
 *
 * <p>Each new row's random numbers come from a generator seeded by (seed, row id), not from one
 * stream in draw order, so row 40000 is the same whether the matrix is grown to 50000 or 55296
 * rows, and rows can be generated independently (in parallel, or streamed by a merge).
 */
public final class VocabResize {
  /** How rows beyond the old vocabulary start. */
  public enum Init {
    NORMAL,
    MEAN
  }

  private VocabResize() {}

  /**
   * Returns the resized matrix: old rows copied (truncated if shrinking), new rows initialised.
   *
   * @param old row-major [oldRows, cols]
   * @param std standard deviation for {@link Init#NORMAL} (0.02 in LLaMA's config)
   * @param seed global seed; row r's values depend only on (seed, r)
   */
  public static float[] resize(
      float[] old, int oldRows, int cols, int newRows, Init init, double std, long seed) {
    if (oldRows <= 0 || cols <= 0 || newRows <= 0) {
      throw new IllegalArgumentException(
          "resize needs positive sizes, got ["
              + oldRows
              + ", "
              + cols
              + "] -> "
              + newRows
              + " rows");
    }
    if ((long) oldRows * cols != old.length) {
      throw new IllegalArgumentException(
          "matrix has " + old.length + " values, not " + oldRows + " x " + cols);
    }
    float[] out = new float[Math.multiplyExact(newRows, cols)];
    System.arraycopy(old, 0, out, 0, Math.min(oldRows, newRows) * cols);
    if (newRows <= oldRows) {
      return out;
    }
    float[] mean = init == Init.MEAN ? meanRow(old, oldRows, cols) : null;
    for (int r = oldRows; r < newRows; r++) {
      if (mean != null) {
        System.arraycopy(mean, 0, out, r * cols, cols);
      } else {
        normalRow(seed, r, std, out, r * cols, cols);
      }
    }
    return out;
  }

  /** Column means of a [rows, cols] matrix, accumulated in double. */
  public static float[] meanRow(float[] m, int rows, int cols) {
    double[] acc = new double[cols];
    for (int r = 0; r < rows; r++) {
      int off = r * cols;
      for (int c = 0; c < cols; c++) {
        acc[c] += m[off + c];
      }
    }
    float[] out = new float[cols];
    for (int c = 0; c < cols; c++) {
      out[c] = (float) (acc[c] / rows);
    }
    return out;
  }

  /**
   * Writes row {@code row}'s N(0, std²) values into {@code dst[off, off + cols)}; a pure function
   * of (seed, row, std, cols). Box-Muller over SplittableRandom, whose output is specified exactly,
   * so the values do not depend on the JDK's unspecified nextGaussian algorithm.
   */
  public static void normalRow(long seed, long row, double std, float[] dst, int off, int cols) {
    SplittableRandom rnd = new SplittableRandom(mix(seed, row));
    for (int c = 0; c < cols; c += 2) {
      double u1 = 1.0 - rnd.nextDouble(); // (0, 1]: log is finite
      double u2 = rnd.nextDouble();
      double radius = Math.sqrt(-2 * Math.log(u1)) * std;
      double angle = 2 * Math.PI * u2;
      dst[off + c] = (float) (radius * Math.cos(angle));
      if (c + 1 < cols) {
        dst[off + c + 1] = (float) (radius * Math.sin(angle));
      }
    }
  }

  /** Decorrelates nearby (seed, row) pairs (the 64-bit finaliser of MurmurHash3 / SplitMix). */
  static long mix(long seed, long row) {
    long z = seed * 0x9E3779B97F4A7C15L + row;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
