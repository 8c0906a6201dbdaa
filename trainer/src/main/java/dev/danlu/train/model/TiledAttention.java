package dev.danlu.train.model;

import dev.danlu.train.tensor.Buf;
import dev.danlu.train.tensor.Gemm;
import dev.danlu.train.tensor.Par;
import java.util.Arrays;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Memory-efficient causal attention: the FlashAttention algorithm (Dao et al. 2022, FlashAttention;
 * Dao 2023, FlashAttention-2) on the CPU. Queries are processed in tiles of {@link #BR} rows
 * against key/value tiles of {@link #BC}; an online softmax keeps a running row maximum m and sum
 * l, so no [seq, seq] matrix exists — a thread holds three [BR, BC] tiles, and forward keeps only
 * the log-sum-exp m + log l per query row for backward, which recomputes each tile's probabilities
 * from it. Memory per layer is therefore linear in seq.
 *
 * <p>It computes what {@link Attention} (the naive path, kept as the test oracle) computes, with
 * the same visibility rule: query t of row b sees key j when j ≤ t, the key is not padding ({@code
 * keyMask}), and, in a packed row, j lies in the query's segment run; a query that sees no key gets
 * zeros. The products QKᵀ, PV and the four backward products are one OpenBLAS gemm per tile ({@link
 * Gemm#tile}); exponentials, masks and rescaling are fused Java loops in double, P rounded to the
 * array dtype before its products as the naive path rounds it.
 *
 * <p>Arrays are the grouped views of {@link LlamaState}: q, out, dq [batch·kvHeads, group·seq,
 * headDim], k, v, dk, dv [batch·kvHeads, seq, headDim]. Forward runs a task per (kv slice, group
 * head, query tile); backward a task per kv slice, which owns that slice's dK, dV and dQ rows, so
 * every sum is accumulated in one fixed order whatever the thread count (bitwise reproducible).
 */
public final class TiledAttention {
  /** Query rows per tile. */
  static final int BR = Integer.getInteger("danlu.attn.br", 64);

  /** Keys per tile. */
  static final int BC = Integer.getInteger("danlu.attn.bc", 256);

  private TiledAttention() {}

  /**
   * out = softmax(q kᵀ / sqrt(headDim)) v under the visibility rule; {@code lse[row]} receives the
   * log-sum-exp of each query row's visible scaled scores (+∞ for a row that sees nothing), rows
   * indexed like q's rows flattened ([kv slice][group·seq]).
   */
  public static void forward(
      LlamaConfig c,
      int batch,
      int seq,
      int[] keyMask,
      int[] segments,
      INDArray q,
      INDArray k,
      INDArray v,
      INDArray out,
      double[] lse) {
    int kv = c.numKvHeads();
    int g = c.numHeads() / kv;
    int hd = c.headDim();
    double scale = 1.0 / Math.sqrt(hd);
    int[] lo = segmentStarts(batch, seq, segments);
    int qTiles = (seq + BR - 1) / BR;
    Buf ob = Buf.of(out);
    int blas = Gemm.blasThreads(1); // parallel over tiles instead (see Gemm.blasThreads)
    try {
      Par.rows(
          batch * kv * g * qTiles,
          (long) BR * seq * hd / 2,
          task -> {
            int qi = task % qTiles;
            int rest = task / qTiles;
            int gi = rest % g;
            int bkv = rest / g;
            forwardTile(
                q, k, v, ob, lse, keyMask, lo, scale, seq, g, hd, bkv, bkv / kv, gi, qi * BR);
          });
    } finally {
      Gemm.blasThreads(blas);
    }
  }

  private static void forwardTile(
      INDArray q,
      INDArray k,
      INDArray v,
      Buf ob,
      double[] lse,
      int[] keyMask,
      int[] lo,
      double scale,
      int seq,
      int g,
      int hd,
      int bkv,
      int b,
      int gi,
      int t0) {
    int t1 = Math.min(seq, t0 + BR);
    int nr = t1 - t0;
    int rowOff = b * seq;
    long qBase = (long) bkv * g * seq * hd + ((long) gi * seq + t0) * hd;
    long kBase = (long) bkv * seq * hd;
    int lseBase = (bkv * g + gi) * seq + t0;
    Scratch sc = Scratch.get(q.dataType(), hd);
    double[] m = sc.m;
    double[] l = sc.l;
    double[] row = sc.row;
    Arrays.fill(m, 0, nr, Double.NEGATIVE_INFINITY);
    Arrays.fill(l, 0, nr, 0.0);
    // keys before the first query's segment start are invisible to the whole tile
    int jLo = lo == null ? 0 : lo[rowOff + t0];
    for (int j0 = jLo; j0 < t1; j0 += BC) {
      int j1 = Math.min(j0 + BC, t1);
      int nc = j1 - j0;
      boolean first = j0 == jLo;
      Gemm.tile(
          q, qBase, hd, false, k, kBase + (long) j0 * hd, hd, true, sc.s, 0, BC, nr, nc, hd, 1, 0);
      for (int r = 0; r < nr; r++) {
        int t = t0 + r;
        int a = Math.max(j0, lo == null ? 0 : lo[rowOff + t]);
        int e = Math.min(j1 - 1, t);
        sc.sb.read(r * BC, row, nc);
        double mx = Double.NEGATIVE_INFINITY;
        for (int j = a; j <= e; j++) {
          if (keyMask == null || keyMask[rowOff + j] != 0) {
            mx = Math.max(mx, row[j - j0] * scale);
          }
        }
        double mOld = m[r];
        double mNew = Math.max(mOld, mx);
        if (mNew == Double.NEGATIVE_INFINITY) {
          Arrays.fill(row, 0, nc, 0.0); // nothing visible yet (its output row stays 0)
        } else {
          double sum = 0;
          Arrays.fill(row, 0, Math.max(0, Math.min(nc, a - j0)), 0.0);
          for (int j = a; j <= e; j++) {
            int jj = j - j0;
            if (keyMask == null || keyMask[rowOff + j] != 0) {
              row[jj] = sc.sb.round(Math.exp(row[jj] * scale - mNew)); // the sum sees P as stored
              sum += row[jj];
            } else {
              row[jj] = 0;
            }
          }
          Arrays.fill(row, Math.max(0, e + 1 - j0), nc, 0.0);
          if (mOld != mNew && mOld != Double.NEGATIVE_INFINITY) {
            // the row's earlier tiles were weighted by exp(s - mOld): rescale them to mNew
            double corr = Math.exp(mOld - mNew);
            l[r] *= corr;
            double[] o = sc.row2;
            sc.obuf.read(r * hd, o, hd);
            for (int i = 0; i < hd; i++) {
              o[i] *= corr;
            }
            sc.obuf.write(r * hd, o, hd);
          }
          l[r] += sum;
          m[r] = mNew;
        }
        sc.pb.write(r * BC, row, nc);
      }
      // O (+)= P V: the unnormalised output accumulates in the tile, as FlashAttention's does
      Gemm.tile(
          sc.p,
          0,
          BC,
          false,
          v,
          kBase + (long) j0 * hd,
          hd,
          false,
          sc.o,
          0,
          hd,
          nr,
          hd,
          nc,
          1,
          first ? 0 : 1);
    }
    double[] o = sc.row2;
    for (int r = 0; r < nr; r++) {
      double inv = l[r] > 0 ? 1.0 / l[r] : 0.0;
      sc.obuf.read(r * hd, o, hd);
      for (int i = 0; i < hd; i++) {
        o[i] *= inv;
      }
      ob.write((int) (qBase + (long) r * hd), o, hd);
      lse[lseBase + r] = l[r] > 0 ? m[r] + Math.log(l[r]) : Double.POSITIVE_INFINITY;
    }
  }

  /**
   * Given dOut, writes dq and dk, dv (summed over each kv head's group), recomputing each tile's
   * probabilities P = exp(s - lse) from the forward's {@code lse}. {@code dRow} is scratch of one
   * double per query row (FlashAttention-2's D = rowsum(dOut ∘ out)).
   */
  public static void backward(
      LlamaConfig c,
      int batch,
      int seq,
      int[] keyMask,
      int[] segments,
      INDArray q,
      INDArray k,
      INDArray v,
      INDArray out,
      double[] lse,
      INDArray dOut,
      double[] dRow,
      INDArray dq,
      INDArray dk,
      INDArray dv) {
    int kv = c.numKvHeads();
    int g = c.numHeads() / kv;
    int hd = c.headDim();
    double scale = 1.0 / Math.sqrt(hd);
    int[] lo = segmentStarts(batch, seq, segments);
    Buf ob = Buf.of(out);
    Buf dob = Buf.of(dOut);
    int rows = batch * kv * g * seq;
    Par.rows(
        rows,
        hd,
        n -> {
          double[] x = Buf.row(0, hd);
          double[] y = Buf.row(1, hd);
          ob.read(n * hd, x, hd);
          dob.read(n * hd, y, hd);
          double d = 0;
          for (int i = 0; i < hd; i++) {
            d += x[i] * y[i];
          }
          dRow[n] = d;
        });
    dq.assign(0);
    dk.assign(0);
    dv.assign(0);
    int blas = Gemm.blasThreads(1); // parallel over tiles instead (see Gemm.blasThreads)
    try {
      Par.rows(
          batch * kv,
          (long) seq * seq * hd * g,
          bkv -> {
            for (int j0 = 0; j0 < seq; j0 += BC) {
              for (int gi = 0; gi < g; gi++) {
                for (int t0 = j0 / BR * BR; t0 < seq; t0 += BR) {
                  backwardTile(
                      q, k, v, lse, dOut, dRow, dq, dk, dv, keyMask, lo, scale, seq, g, hd, bkv,
                      bkv / kv, gi, t0, j0);
                }
              }
            }
          });
    } finally {
      Gemm.blasThreads(blas);
    }
  }

  private static void backwardTile(
      INDArray q,
      INDArray k,
      INDArray v,
      double[] lse,
      INDArray dOut,
      double[] dRow,
      INDArray dq,
      INDArray dk,
      INDArray dv,
      int[] keyMask,
      int[] lo,
      double scale,
      int seq,
      int g,
      int hd,
      int bkv,
      int b,
      int gi,
      int t0,
      int j0) {
    int t1 = Math.min(seq, t0 + BR);
    int j1 = Math.min(seq, j0 + BC);
    int rowOff = b * seq;
    int first = Math.max(t0, j0); // queries before j0 see none of these keys
    if (first >= t1 || (lo != null && lo[rowOff + first] >= j1)) {
      return; // and segment starts only grow along the row
    }
    int nr = t1 - t0;
    int nc = j1 - j0;
    long qBase = (long) bkv * g * seq * hd + ((long) gi * seq + t0) * hd;
    long kBase = (long) bkv * seq * hd + (long) j0 * hd;
    int rowBase = (bkv * g + gi) * seq + t0;
    Scratch sc = Scratch.get(q.dataType(), hd);
    double[] row = sc.row;
    double[] pd = sc.pd;
    Gemm.tile(q, qBase, hd, false, k, kBase, hd, true, sc.s, 0, BC, nr, nc, hd, 1, 0);
    for (int r = 0; r < nr; r++) {
      int t = t0 + r;
      int a = Math.max(j0, lo == null ? 0 : lo[rowOff + t]);
      int e = Math.min(j1 - 1, t);
      double rowLse = lse[rowBase + r];
      sc.sb.read(r * BC, row, nc);
      Arrays.fill(row, 0, Math.max(0, Math.min(nc, a - j0)), 0.0);
      for (int j = a; j <= e; j++) {
        boolean visible = keyMask == null || keyMask[rowOff + j] != 0;
        row[j - j0] = visible ? sc.sb.round(Math.exp(row[j - j0] * scale - rowLse)) : 0.0;
      }
      Arrays.fill(row, Math.max(0, e + 1 - j0), nc, 0.0);
      System.arraycopy(row, 0, pd, r * BC, nc);
      sc.pb.write(r * BC, row, nc);
    }
    // dV_j += Pᵀ dO_i
    Gemm.tile(sc.p, 0, BC, true, dOut, qBase, hd, false, dv, kBase, hd, nc, hd, nr, 1, 1);
    // dP = dO_i V_jᵀ
    Gemm.tile(dOut, qBase, hd, false, v, kBase, hd, true, sc.s, 0, BC, nr, nc, hd, 1, 0);
    for (int r = 0; r < nr; r++) {
      double d = dRow[rowBase + r];
      sc.sb.read(r * BC, row, nc);
      for (int jj = 0; jj < nc; jj++) {
        double p = pd[r * BC + jj];
        row[jj] = p == 0 ? 0.0 : scale * p * (row[jj] - d); // dS
      }
      sc.pb.write(r * BC, row, nc);
    }
    // dQ_i += dS K_j, dK_j += dSᵀ Q_i
    Gemm.tile(sc.p, 0, BC, false, k, kBase, hd, false, dq, qBase, hd, nr, hd, nc, 1, 1);
    Gemm.tile(sc.p, 0, BC, true, q, qBase, hd, false, dk, kBase, hd, nc, hd, nr, 1, 1);
  }

  /**
   * For packed rows: the row index at which each token's segment run starts (a token attends to
   * keys from there on); null without segments.
   */
  static int[] segmentStarts(int batch, int seq, int[] segments) {
    if (segments == null) {
      return null;
    }
    int[] lo = new int[batch * seq];
    for (int b = 0; b < batch; b++) {
      int start = 0;
      for (int t = 0; t < seq; t++) {
        int n = b * seq + t;
        if (t > 0 && segments[n] != segments[n - 1]) {
          start = t;
        }
        lo[n] = start;
      }
    }
    return lo;
  }

  /** One thread's tiles: S (and dP), P (and dS), the PV product, and row state. */
  private static final class Scratch {
    final DataType dt;
    final int hd;
    final INDArray s;
    final INDArray p;
    final INDArray o;
    final Buf sb;
    final Buf pb;
    final Buf obuf;
    final double[] m = new double[BR];
    final double[] l = new double[BR];
    final double[] row = new double[BC];
    final double[] row2;
    final double[] pd = new double[BR * BC];

    private Scratch(DataType dt, int hd) {
      this.dt = dt;
      this.hd = hd;
      s = Nd4j.create(dt, BR, BC);
      p = Nd4j.create(dt, BR, BC);
      o = Nd4j.create(dt, BR, hd);
      sb = Buf.of(s);
      pb = Buf.of(p);
      obuf = Buf.of(o);
      row2 = new double[hd];
    }

    private static final ThreadLocal<Scratch> LOCAL = new ThreadLocal<>();

    static Scratch get(DataType dt, int hd) {
      Scratch sc = LOCAL.get();
      if (sc == null || sc.dt != dt || sc.hd != hd) {
        sc = new Scratch(dt, hd);
        LOCAL.set(sc);
      }
      return sc;
    }
  }
}
