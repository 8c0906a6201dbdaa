package dev.danlu.train.tensor;

import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * Row-parallel loops for the fused kernels. Rows are independent in every kernel that uses this, so
 * the result does not depend on the number of threads (bitwise reproducible).
 */
public final class Par {
  /** Below this many elements per call, threads cost more than they save. */
  private static final long MIN_PARALLEL_WORK = 1 << 15;

  private Par() {}

  /** Runs {@code body} for rows 0..rows-1; {@code rowWork} is the elements touched per row. */
  public static void rows(int rows, long rowWork, IntConsumer body) {
    if (rows > 1 && (long) rows * rowWork >= MIN_PARALLEL_WORK) {
      IntStream.range(0, rows).parallel().forEach(body);
    } else {
      for (int r = 0; r < rows; r++) {
        body.accept(r);
      }
    }
  }
}
