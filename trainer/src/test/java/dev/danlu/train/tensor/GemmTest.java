package dev.danlu.train.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * The direct OpenBLAS path of {@link Gemm} against a plain triple loop in double, over every layout
 * the training step hands it: fresh c-order arrays, row-block and column-block views (row stride
 * larger than the width), transposed views, f-order arrays, alpha/beta, and 3-D batches.
 */
class GemmTest {
  @BeforeAll
  static void cpu() {
    Backend.select();
  }

  private static INDArray rand(DataType t, long... shape) {
    SplittableRandom r = new SplittableRandom(shape.length * 31L + shape[0]);
    INDArray x = Nd4j.create(t, shape);
    INDArray flat = x.reshape(-1);
    for (long i = 0; i < flat.length(); i++) {
      flat.putScalar(i, r.nextDouble(-1, 1));
    }
    return x;
  }

  /** alpha op(a) op(b) + beta c0, in double. */
  private static double[][] reference(
      INDArray a, INDArray b, INDArray c0, boolean ta, boolean tb, double alpha, double beta) {
    INDArray opA = ta ? a.transpose() : a;
    INDArray opB = tb ? b.transpose() : b;
    int m = (int) opA.size(0);
    int k = (int) opA.size(1);
    int n = (int) opB.size(1);
    double[][] out = new double[m][n];
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < n; j++) {
        double s = 0;
        for (int p = 0; p < k; p++) {
          s += opA.getDouble(i, p) * opB.getDouble(p, j);
        }
        out[i][j] = alpha * s + beta * c0.getDouble(i, j);
      }
    }
    return out;
  }

  private static void check(
      INDArray a, INDArray b, INDArray c, boolean ta, boolean tb, double alpha, double beta) {
    double[][] want = reference(a, b, c, ta, tb, alpha, beta);
    Gemm.mm(a, b, c, ta, tb, alpha, beta);
    double tol = c.dataType() == DataType.FLOAT ? 1e-5 : 1e-12;
    for (int i = 0; i < want.length; i++) {
      for (int j = 0; j < want[i].length; j++) {
        assertEquals(want[i][j], c.getDouble(i, j), tol * (1 + Math.abs(want[i][j])), i + "," + j);
      }
    }
  }

  @Test
  void directPathIsTakenOnCpu() {
    INDArray a = rand(DataType.FLOAT, 3, 4);
    assertTrue(Gemm.directFor(a, a, a));
    INDArray h = Nd4j.create(DataType.HALF, 3, 4);
    assertFalse(Gemm.directFor(h, h, h));
  }

  @Test
  void allTransposeFlagsAlphaAndBeta() {
    for (DataType t : new DataType[] {DataType.FLOAT, DataType.DOUBLE}) {
      for (boolean ta : new boolean[] {false, true}) {
        for (boolean tb : new boolean[] {false, true}) {
          INDArray a = ta ? rand(t, 7, 5) : rand(t, 5, 7);
          INDArray b = tb ? rand(t, 3, 7) : rand(t, 7, 3);
          check(a, b, rand(t, 5, 3), ta, tb, 1.0, 0.0);
          check(a, b, rand(t, 5, 3), ta, tb, 0.5, 1.0);
        }
      }
    }
  }

  @Test
  void viewsWithRowStridesAndTransposedOrFortranOperands() {
    INDArray big = rand(DataType.FLOAT, 9, 12);
    INDArray colBlock = big.get(NDArrayIndex.interval(1, 6), NDArrayIndex.interval(2, 9)); // 5x7
    INDArray rowBlock = big.reshape(-1).get(NDArrayIndex.interval(12, 12 + 21)).reshape(7, 3);
    INDArray out = rand(DataType.FLOAT, 8, 10);
    INDArray outView = out.get(NDArrayIndex.interval(2, 7), NDArrayIndex.interval(4, 7)); // 5x3
    check(colBlock, rowBlock, outView, false, false, 1.0, 1.0);
    INDArray fOrder = rand(DataType.FLOAT, 7, 3).dup('f');
    check(colBlock, fOrder, rand(DataType.FLOAT, 5, 3), false, false, 1.0, 0.0);
    INDArray transposedView = rand(DataType.FLOAT, 7, 5).transpose(); // 5x7, column-contiguous
    check(transposedView, rowBlock, rand(DataType.FLOAT, 5, 3), false, false, 2.0, 0.0);
    check(transposedView, rowBlock.transpose(), rand(DataType.FLOAT, 5, 3), false, true, 1, 1);
    // a single row and a single column
    check(rand(DataType.FLOAT, 1, 7), rowBlock, rand(DataType.FLOAT, 1, 3), false, false, 1, 0);
    check(colBlock, rand(DataType.FLOAT, 7, 1), rand(DataType.FLOAT, 5, 1), false, false, 1, 0);
  }

  @Test
  void batchedMatchesPerSliceProducts() {
    for (boolean ta : new boolean[] {false, true}) {
      for (boolean tb : new boolean[] {false, true}) {
        INDArray a = ta ? rand(DataType.FLOAT, 4, 6, 5) : rand(DataType.FLOAT, 4, 5, 6);
        INDArray b = tb ? rand(DataType.FLOAT, 4, 3, 6) : rand(DataType.FLOAT, 4, 6, 3);
        INDArray c = Nd4j.create(DataType.FLOAT, 4, 5, 3);
        Gemm.batched(a, b, c, ta, tb);
        for (int i = 0; i < 4; i++) {
          double[][] want =
              reference(
                  a.slice(i), b.slice(i), Nd4j.create(DataType.FLOAT, 5, 3), ta, tb, 1.0, 0.0);
          for (int r = 0; r < 5; r++) {
            for (int j = 0; j < 3; j++) {
              assertEquals(want[r][j], c.getDouble(i, r, j), 1e-5, i + ":" + r + "," + j);
            }
          }
        }
      }
    }
  }

  @Test
  void directAndNd4jPathsAgree() {
    INDArray a = rand(DataType.FLOAT, 64, 48);
    INDArray b = rand(DataType.FLOAT, 40, 48);
    INDArray viaBlas = Nd4j.create(DataType.FLOAT, 64, 40);
    INDArray viaNd4j = Nd4j.create(DataType.FLOAT, 64, 40);
    Gemm.mm(a, b, viaBlas, false, true, 1.0, 0.0);
    boolean was = Gemm.direct(false);
    try {
      Gemm.mm(a, b, viaNd4j, false, true, 1.0, 0.0);
    } finally {
      Gemm.direct(was);
    }
    assertEquals(0.0, viaBlas.sub(viaNd4j).amaxNumber().doubleValue(), 1e-5);
  }
}
