package dev.danlu.train.checkpoint;

import java.util.stream.IntStream;

/**
 * The merge kernel: {@code W[rows] += (B[rows] @ A) * scaling} for a block of rows of a [out, in]
 * weight, with B [out, r] and A [r, in] (PEFT layouts), in PEFT's order of operations (product,
 * then scale, then add). Each output row is r row-axpys into a scratch row, which the JIT
 * vectorises; rows are split across cores. See docs/benchmarks.md for its speed against ND4J's
 * gemm: a merge is bound by reading and writing the weights, not by this loop.
 */
final class LoraDelta {
  private static final int ROWS_PER_TASK = 32;

  private LoraDelta() {}

  /**
   * Adds the LoRA delta to {@code w}, which holds rows {@code [row0, row0 + rows)} of the weight,
   * row-major with {@code in} columns.
   */
  static void addTo(
      float[] w, int row0, int rows, float[] b, float[] a, int r, int in, float scaling) {
    int tasks = (rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    IntStream.range(0, tasks)
        .parallel()
        .forEach(
            t -> {
              float[] delta = new float[in];
              int end = Math.min(rows, (t + 1) * ROWS_PER_TASK);
              for (int i = t * ROWS_PER_TASK; i < end; i++) {
                java.util.Arrays.fill(delta, 0f);
                int bOff = (row0 + i) * r;
                boolean any = false;
                for (int k = 0; k < r; k++) {
                  float bik = b[bOff + k];
                  if (bik == 0f) {
                    continue; // a fresh adapter (B = 0) leaves W bit-identical
                  }
                  any = true;
                  int aOff = k * in;
                  for (int j = 0; j < in; j++) {
                    delta[j] += bik * a[aOff + j];
                  }
                }
                if (any) {
                  int wOff = i * in;
                  for (int j = 0; j < in; j++) {
                    w[wOff + j] += delta[j] * scaling;
                  }
                }
              }
            });
  }
}
