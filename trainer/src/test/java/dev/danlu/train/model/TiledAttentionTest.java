package dev.danlu.train.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.tensor.Buf;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The tiled (FlashAttention) kernel against the naive path it replaces, forward and backward, with
 * GQA, right padding, a padded first token (a query that sees no key), packed segments, and lengths
 * that are not multiples of the tiles: with the default tiles (forward 128 × 1024, backward 256 ×
 * 256) and with small odd tiles that make every row's softmax span several key tiles (the online
 * rescaling) and the backward's query and key tiles fall out of step with each other and with the
 * diagonal.
 */
class TiledAttentionTest {
  /** q, k, v, dOut and the naive path's results for one shape and mask. */
  private record Case(
      LlamaConfig c,
      int batch,
      int seq,
      int[] mask,
      int[] segments,
      INDArray qh,
      INDArray kh,
      INDArray vh,
      INDArray dOh) {}

  private static Case randomCase(
      int batch, int seq, int heads, int kvHeads, int hd, int[] mask, int[] seg, DataType dt) {
    LlamaConfig c =
        new LlamaConfig(heads * hd, 8, 1, heads, kvHeads, 10, 1e-5, 10000.0, null, false, seq);
    SplittableRandom r = new SplittableRandom(seq * 31L + heads);
    // q scaled up so that some rows are peaked: the online maximum must rescale correctly
    INDArray qh = fill(Nd4j.create(dt, (long) batch * heads, seq, hd), r, 3.0);
    INDArray kh = fill(Nd4j.create(dt, (long) batch * kvHeads, seq, hd), r, 1.0);
    INDArray vh = fill(Nd4j.create(dt, (long) batch * kvHeads, seq, hd), r, 1.0);
    INDArray dOh = fill(Nd4j.create(dt, (long) batch * heads, seq, hd), r, 1.0);
    return new Case(c, batch, seq, mask, seg, qh, kh, vh, dOh);
  }

  private static INDArray fill(INDArray a, SplittableRandom r, double scale) {
    Buf b = Buf.of(a);
    for (int i = 0; i < b.length(); i++) {
      b.set(i, scale * (r.nextDouble() * 2 - 1));
    }
    return a;
  }

  /** Forward 24 × 40, backward 56 × 24: several tiles per row, tile edges off the diagonal. */
  private static final TiledAttention.Tiles SMALL = new TiledAttention.Tiles(24, 40, 56, 24);

  /** out, dq, dk, dv of one path. */
  private static INDArray[] run(Case k, boolean tiled) {
    return run(k, tiled, TiledAttention.Tiles.DEFAULT);
  }

  private static INDArray[] run(Case k, boolean tiled, TiledAttention.Tiles tiles) {
    LlamaConfig c = k.c;
    DataType dt = k.qh.dataType();
    int b = k.batch;
    INDArray oh = Nd4j.create(dt, k.qh.shape());
    INDArray dQh = Nd4j.create(dt, k.qh.shape());
    INDArray dKh = Nd4j.create(dt, k.kh.shape());
    INDArray dVh = Nd4j.create(dt, k.vh.shape());
    INDArray q3 = LlamaState.grouped(c, b, k.qh);
    INDArray o3 = LlamaState.grouped(c, b, oh);
    INDArray dO3 = LlamaState.grouped(c, b, k.dOh);
    INDArray dQ3 = LlamaState.grouped(c, b, dQh);
    if (tiled) {
      double[] lse = new double[(int) (k.qh.length() / c.headDim())];
      double[] d = new double[lse.length];
      TiledAttention.forward(
          c, b, k.seq, k.seq, k.mask, k.segments, q3, k.kh, k.vh, o3, lse, tiles);
      TiledAttention.backward(
          c,
          b,
          k.seq,
          k.seq,
          k.mask,
          k.segments,
          q3,
          k.kh,
          k.vh,
          o3,
          lse,
          dO3,
          d,
          dQ3,
          dKh,
          dVh,
          tiles);
    } else {
      INDArray probs = Nd4j.create(dt, (long) b * c.numHeads(), k.seq, k.seq);
      INDArray probs3 = LlamaState.grouped(c, b, probs);
      INDArray dProbs3 = Nd4j.create(dt, probs3.shape());
      Attention.forward(c, k.seq, k.mask, k.segments, q3, k.kh, k.vh, probs3, o3);
      Attention.backward(c, k.seq, q3, k.kh, k.vh, probs3, dO3, dProbs3, dQ3, dKh, dVh);
    }
    return new INDArray[] {oh, dQh, dKh, dVh};
  }

  /** max |tiled - naive| / max |naive| over each of out, dq, dk, dv; asserts it is below tol. */
  private static void assertClose(Case k, double tol) {
    assertClose(k, tol, TiledAttention.Tiles.DEFAULT);
  }

  private static void assertClose(Case k, double tol, TiledAttention.Tiles tiles) {
    INDArray[] naive = run(k, false);
    INDArray[] tiled = run(k, true, tiles);
    String[] names = {"out", "dq", "dk", "dv"};
    for (int i = 0; i < names.length; i++) {
      double[] a = naive[i].dup().data().asDouble();
      double[] t = tiled[i].dup().data().asDouble();
      double max = 0;
      double diff = 0;
      for (int j = 0; j < a.length; j++) {
        max = Math.max(max, Math.abs(a[j]));
        diff = Math.max(diff, Math.abs(a[j] - t[j]));
      }
      assertTrue(max > 0, names[i] + " is all zeros");
      assertTrue(
          diff <= tol * max,
          names[i]
              + " at seq "
              + k.seq
              + ": tiled differs from naive by "
              + diff / max
              + " > "
              + tol);
    }
  }

  /** Right padding in row 1, a padded first token in row 2 (its queries see no key). */
  private static int[] paddingMask(int batch, int seq, int pad) {
    int[] mask = new int[batch * seq];
    Arrays.fill(mask, 1);
    Arrays.fill(mask, 2 * seq - pad, 2 * seq, 0);
    if (batch > 2) {
      mask[2 * seq] = 0;
    }
    return mask;
  }

  /** Row 0 packed as runs of the given lengths (the rest one more run); other rows one run. */
  private static int[] segments(int batch, int seq, int... runs) {
    int[] seg = new int[batch * seq];
    int t = 0;
    int id = 1;
    for (int len : runs) {
      Arrays.fill(seg, t, t + len, id++);
      t += len;
    }
    Arrays.fill(seg, t, seq, id);
    return seg;
  }

  @Test
  void float64EqualsNaivePathToRoundoff() {
    // in float64 both paths are exact to ~1e-16 per operation: any masking, rescaling or
    // accumulation mistake shows far above 1e-12
    int seq = 333; // 5.2 query tiles, 1.3 key tiles
    int batch = 3;
    assertClose(
        randomCase(batch, seq, 4, 2, 8, paddingMask(batch, seq, 40), null, DataType.DOUBLE), 1e-12);
    assertClose(
        randomCase(
            batch,
            seq,
            4,
            2,
            8,
            paddingMask(batch, seq, 40),
            segments(batch, seq, 70, 1, 190),
            DataType.DOUBLE),
        1e-12);
    // no GQA, no mask
    assertClose(randomCase(1, 300, 2, 2, 16, null, null, DataType.DOUBLE), 1e-12);
  }

  @Test
  void smallTilesEqualNaivePathToRoundoff() {
    // 333 keys over forward key tiles of 40: every row past 40 rescales its running output; the
    // backward's 56-row query tiles start off the 24-key tiles' diagonal
    int seq = 333;
    int batch = 3;
    assertClose(
        randomCase(batch, seq, 4, 2, 8, paddingMask(batch, seq, 40), null, DataType.DOUBLE),
        1e-12,
        SMALL);
    assertClose(
        randomCase(
            batch,
            seq,
            4,
            2,
            8,
            paddingMask(batch, seq, 40),
            segments(batch, seq, 70, 1, 190),
            DataType.DOUBLE),
        1e-12,
        SMALL);
    assertClose(randomCase(1, 300, 2, 2, 16, null, null, DataType.DOUBLE), 1e-12, SMALL);
    // float32 through the fast exponential with rescaling across many tiles
    assertClose(
        randomCase(
            batch,
            seq,
            4,
            2,
            8,
            paddingMask(batch, seq, 40),
            segments(batch, seq, 70, 1, 190),
            DataType.FLOAT),
        1e-5,
        SMALL);
  }

  @Test
  void queriesAfterCachedKeysEqualTheLastRowsOfTheFullPass() {
    // a generation prefill: the last 150 of 333 positions query all 333 keys (forwardSuffix);
    // they must equal the full causal pass's last 150 rows, with default and small tiles
    for (DataType dt : new DataType[] {DataType.DOUBLE, DataType.FLOAT}) {
      int seq = 333;
      int qLen = 150;
      Case k = randomCase(1, seq, 4, 2, 8, null, null, dt);
      LlamaConfig c = k.c;
      INDArray full = run(k, false)[0]; // (heads, seq, hd)
      INDArray qLast =
          k.qh
              .get(
                  org.nd4j.linalg.indexing.NDArrayIndex.all(),
                  org.nd4j.linalg.indexing.NDArrayIndex.interval(seq - qLen, seq),
                  org.nd4j.linalg.indexing.NDArrayIndex.all())
              .dup('c');
      INDArray want =
          full.get(
                  org.nd4j.linalg.indexing.NDArrayIndex.all(),
                  org.nd4j.linalg.indexing.NDArrayIndex.interval(seq - qLen, seq),
                  org.nd4j.linalg.indexing.NDArrayIndex.all())
              .dup('c');
      for (TiledAttention.Tiles tiles : new TiledAttention.Tiles[] {null, SMALL}) {
        INDArray out = Nd4j.create(dt, qLast.shape());
        INDArray q3 = LlamaState.grouped(c, 1, qLast);
        INDArray o3 = LlamaState.grouped(c, 1, out);
        if (tiles == null) {
          TiledAttention.forwardSuffix(c, qLen, seq, q3, k.kh, k.vh, o3);
        } else {
          double[] lse = new double[c.numHeads() * qLen];
          TiledAttention.forward(c, 1, qLen, seq, null, null, q3, k.kh, k.vh, o3, lse, tiles);
        }
        double[] a = want.data().asDouble();
        double[] t = out.data().asDouble();
        double max = 0;
        double diff = 0;
        for (int j = 0; j < a.length; j++) {
          max = Math.max(max, Math.abs(a[j]));
          diff = Math.max(diff, Math.abs(a[j] - t[j]));
        }
        double tol = dt == DataType.DOUBLE ? 1e-12 : 1e-5;
        assertTrue(diff <= tol * max, dt + " tiles " + tiles + ": " + diff / max);
      }
    }
  }

  @Test
  void float32EqualsNaivePathAt2048Tokens() {
    // the acceptance: 1e-5 of the largest value (float32 reordering of sums over up to
    // 2048 keys; measured ~1e-7)
    int seq = 2048;
    int batch = 2;
    assertClose(
        randomCase(batch, seq, 4, 2, 8, paddingMask(batch, seq, 300), null, DataType.FLOAT), 1e-5);
    assertClose(
        randomCase(
            batch,
            seq,
            4,
            2,
            8,
            paddingMask(batch, seq, 300),
            segments(batch, seq, 500, 700),
            DataType.FLOAT),
        1e-5);
  }

  @Test
  void aQueryWithNoVisibleKeyGetsZerosAndNoGradient() {
    int seq = 70;
    Case k = randomCase(3, seq, 2, 1, 4, paddingMask(3, seq, 5), null, DataType.DOUBLE);
    INDArray[] tiled = run(k, true);
    // row 2 (heads 4..5), query 0: its only key is padding
    for (int h = 4; h < 6; h++) {
      assertArrayEquals(
          new double[4],
          tiled[0]
              .get(
                  org.nd4j.linalg.indexing.NDArrayIndex.point(h),
                  org.nd4j.linalg.indexing.NDArrayIndex.point(0),
                  org.nd4j.linalg.indexing.NDArrayIndex.all())
              .toDoubleVector());
    }
    // and padded keys get no key/value gradient
    double[] dv =
        tiled[3]
            .get(
                org.nd4j.linalg.indexing.NDArrayIndex.point(1),
                org.nd4j.linalg.indexing.NDArrayIndex.point(seq - 1),
                org.nd4j.linalg.indexing.NDArrayIndex.all())
            .toDoubleVector();
    assertArrayEquals(new double[4], dv);
  }

  @Test
  void resultDoesNotDependOnTheThreadCount() {
    // every sum is accumulated by one task in a fixed order: bitwise equal run serially
    int seq = 300;
    Case k = randomCase(2, seq, 4, 2, 8, paddingMask(2, seq, 10), null, DataType.FLOAT);
    INDArray[] parallel = run(k, true);
    INDArray[] serial;
    java.util.concurrent.ForkJoinPool one = new java.util.concurrent.ForkJoinPool(1);
    try {
      serial = one.submit(() -> run(k, true)).get();
    } catch (Exception e) {
      throw new AssertionError(e);
    } finally {
      one.shutdown();
    }
    for (int i = 0; i < 4; i++) {
      assertArrayEquals(parallel[i].data().asFloat(), serial[i].data().asFloat());
    }
  }
}
