package dev.danlu.train.model;

import dev.danlu.train.tensor.Buf;
import dev.danlu.train.tensor.FastExp;
import dev.danlu.train.tensor.Gemm;
import dev.danlu.train.tensor.Par;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Arrays;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Memory-efficient causal attention: the FlashAttention algorithm (Dao et al. 2022, FlashAttention;
 * Dao 2023, FlashAttention-2) on the CPU. Queries are processed in tiles against key/value tiles;
 * an online softmax keeps a running row maximum m and sum l, so no [seq, seq] matrix exists — a
 * thread holds two tiles of scores/probabilities and one of outputs, and forward keeps only the
 * log-sum-exp m + log l per query row for backward, which recomputes each tile's probabilities from
 * it. Memory per layer is therefore linear in seq.
 *
 * <p>It computes what {@link Attention} (the naive path, kept as the test oracle) computes, with
 * the same visibility rule: query t of row b sees key j when j ≤ t, the key is not padding ({@code
 * keyMask}), and, in a packed row, j lies in the query's segment run; a query that sees no key gets
 * zeros. The products QKᵀ, PV and the four backward products are one OpenBLAS gemm per tile ({@link
 * Gemm#tile}); exponentials, masks and rescaling are fused Java loops in double over each row's
 * visible keys only, P rounded to the array dtype before its products as the naive path rounds it.
 *
 * <p>Tile shapes (see {@link Tiles#DEFAULT}) are chosen for the CPU, not a GPU's shared memory: the
 * time goes to single-threaded gemm calls (each thread runs its own tiles) and to one {@code
 * Math.exp} per visible score, so forward takes wide key tiles (at ≤ 1024 keys a row's softmax is
 * done in one tile, no rescaling) and backward square 256 × 256 tiles, whose products dV += PᵀdO
 * and dK += dSᵀQ sum over 256 query rows (64-row tiles ran those at half the rate). Rows and keys a
 * tile cannot see (before the diagonal, after the last query) are cut from its products.
 *
 * <p>Arrays are the grouped views of {@link LlamaState}: q, out, dq [batch·kvHeads, group·qLen,
 * headDim], k, v, dk, dv [batch·kvHeads, kLen, headDim]. The queries are the last qLen of the kLen
 * positions (training: qLen = kLen = seq; a generation prefill after cached tokens: fewer). Forward
 * runs a task per (kv slice, group head, query tile); backward a task per kv slice, which owns that
 * slice's dK, dV and dQ rows, so every sum is accumulated in one fixed order whatever the thread
 * count (bitwise reproducible).
 */
public final class TiledAttention {
  /**
   * Tile shapes: forward query rows × keys, backward query rows × keys.
   *
   * @param br forward query rows per tile
   * @param bc forward keys per tile
   * @param brBwd backward query rows per tile
   * @param bcBwd backward keys per tile
   */
  public record Tiles(int br, int bc, int brBwd, int bcBwd) {
    public Tiles {
      if (br < 1 || bc < 1 || brBwd < 1 || bcBwd < 1) {
        throw new IllegalArgumentException("tile sizes must be positive: " + this);
      }
    }

    /**
     * 128 × 1024 forward, 256 × 256 backward, measured best of the shapes tried by {@code
     * AttentionBench} at LLaMA-7B heads (docs/benchmarks.md); {@code -Ddanlu.attn.br}, {@code .bc},
     * {@code .bwd.br}, {@code .bwd.bc} override them.
     */
    public static final Tiles DEFAULT =
        new Tiles(
            Integer.getInteger("danlu.attn.br", 128),
            Integer.getInteger("danlu.attn.bc", 1024),
            Integer.getInteger("danlu.attn.bwd.br", 256),
            Integer.getInteger("danlu.attn.bwd.bc", 256));
  }

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
    forward(c, batch, seq, seq, keyMask, segments, q, k, v, out, lse, Tiles.DEFAULT);
  }

  /**
   * Causal attention of the last {@code qLen} of {@code kLen} positions (batch 1, no masks): query
   * row i sits at position kLen − qLen + i and sees keys 0..kLen − qLen + i. A generation prefill
   * over a cache of kLen − qLen earlier keys. q, out [kvHeads, group·qLen, headDim], k, v [kvHeads,
   * kLen, headDim].
   */
  public static void forwardSuffix(
      LlamaConfig c, int qLen, int kLen, INDArray q, INDArray k, INDArray v, INDArray out) {
    double[] lse = new double[c.numHeads() * qLen];
    forward(c, 1, qLen, kLen, null, null, q, k, v, out, lse, Tiles.DEFAULT);
  }

  /**
   * {@link #forward} with explicit lengths and tiles (tests run small tiles through every path).
   */
  static void forward(
      LlamaConfig c,
      int batch,
      int qLen,
      int kLen,
      int[] keyMask,
      int[] segments,
      INDArray q,
      INDArray k,
      INDArray v,
      INDArray out,
      double[] lse,
      Tiles tiles) {
    checkLengths(qLen, kLen);
    int kv = c.numKvHeads();
    int g = c.numHeads() / kv;
    int hd = c.headDim();
    Geometry geo =
        new Geometry(
            qLen, kLen, g, hd, 1.0 / Math.sqrt(hd), keyMask, segmentStarts(batch, kLen, segments));
    int qTiles = (qLen + tiles.br - 1) / tiles.br;
    Buf ob = Buf.of(out);
    int blas = Gemm.blasThreads(1); // parallel over tiles instead (see Gemm.blasThreads)
    try {
      Par.rows(
          batch * kv * g * qTiles,
          (long) tiles.br * kLen * hd / 2,
          task -> {
            int qi = task % qTiles;
            int rest = task / qTiles;
            int gi = rest % g;
            int bkv = rest / g;
            forwardTile(geo, tiles, q, k, v, ob, lse, bkv, bkv / kv, gi, qi * tiles.br);
          });
    } finally {
      Gemm.blasThreads(blas);
    }
  }

  /** Lengths, heads and masks of one call; query row t sits at key position qOff + t. */
  private record Geometry(
      int qLen, int kLen, int g, int hd, double scale, int[] keyMask, int[] lo) {
    int qOff() {
      return kLen - qLen;
    }

    /** First key visible to position p of batch row b (its segment's start; 0 unpacked). */
    int from(int b, int p) {
      return lo == null ? 0 : lo[b * kLen + p];
    }
  }

  private static void forwardTile(
      Geometry geo,
      Tiles tiles,
      INDArray q,
      INDArray k,
      INDArray v,
      Buf ob,
      double[] lse,
      int bkv,
      int b,
      int gi,
      int t0) {
    int qLen = geo.qLen;
    int hd = geo.hd;
    int qOff = geo.qOff();
    int t1 = Math.min(qLen, t0 + tiles.br);
    int nr = t1 - t0;
    long qBase = (long) bkv * geo.g * qLen * hd + ((long) gi * qLen + t0) * hd;
    long kBase = (long) bkv * geo.kLen * hd;
    int lseBase = (bkv * geo.g + gi) * qLen + t0;
    Scratch sc = Scratch.get(q.dataType(), hd, tiles);
    int ld = sc.ld;
    double[] m = sc.m;
    double[] l = sc.l;
    Arrays.fill(m, 0, nr, Double.NEGATIVE_INFINITY);
    Arrays.fill(l, 0, nr, 0.0);
    // keys before the first query's segment start are invisible to the whole tile, keys after the
    // last query's position too
    int jLo = geo.from(b, qOff + t0);
    int jHi = qOff + t1;
    for (int j0 = jLo; j0 < jHi; j0 += tiles.bc) {
      int j1 = Math.min(j0 + tiles.bc, jHi);
      int nc = j1 - j0;
      Gemm.tile(
          q, qBase, hd, false, k, kBase + (long) j0 * hd, hd, true, sc.s, 0, ld, nr, nc, hd, 1, 0);
      for (int r = 0; r < nr; r++) {
        int p = qOff + t0 + r;
        int a = Math.max(j0, geo.from(b, p));
        int e = Math.min(j1 - 1, p);
        int maskOff = b * geo.kLen + a;
        double mx = Double.NEGATIVE_INFINITY;
        if (a <= e) {
          readScores(sc, r * ld + a - j0, e - a + 1);
          mx = rowMax(sc, e - a + 1, geo.keyMask, maskOff);
        }
        if (mx == Double.NEGATIVE_INFINITY) {
          writeP(sc, r * ld, nc, 0, 0); // nothing visible here: m, l and the O row unchanged
          continue;
        }
        // scale > 0, so scale·max(s) is max(scale·s) exactly (rounding is monotone)
        double mOld = m[r];
        double mNew = Math.max(mOld, mx * geo.scale);
        double sum = expRow(sc, e - a + 1, geo.scale, mNew, geo.keyMask, maskOff);
        writeP(sc, r * ld, a - j0, e - a + 1, j1 - 1 - e);
        if (mNew > mOld && mOld != Double.NEGATIVE_INFINITY) {
          // the row's earlier tiles were weighted by exp(s - mOld): rescale them to mNew
          double corr = Math.exp(mOld - mNew);
          l[r] *= corr;
          double[] o = sc.orow;
          sc.obuf.read(r * hd, o, hd);
          for (int i = 0; i < hd; i++) {
            o[i] *= corr;
          }
          sc.obuf.write(r * hd, o, hd);
        }
        l[r] += sum;
        m[r] = mNew;
      }
      // O (+)= P V: the unnormalised output accumulates in the tile, as FlashAttention's does; a
      // row that saw nothing in the first tile has a zero P row, so its O row starts at zero
      Gemm.tile(
          sc.p,
          0,
          ld,
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
          j0 == jLo ? 0 : 1);
    }
    double[] o = sc.orow;
    for (int r = 0; r < nr; r++) {
      if (jLo >= jHi || l[r] == 0) {
        Arrays.fill(o, 0, hd, 0.0); // no visible key: zeros, as the naive path
      } else {
        double inv = 1.0 / l[r];
        sc.obuf.read(r * hd, o, hd);
        for (int i = 0; i < hd; i++) {
          o[i] *= inv;
        }
      }
      ob.write((int) (qBase + (long) r * hd), o, hd);
      lse[lseBase + r] = l[r] > 0 ? m[r] + Math.log(l[r]) : Double.POSITIVE_INFINITY;
    }
  }

  /** Reads scores [off, off + n) of the thread's S tile into its row (float or double). */
  private static void readScores(Scratch sc, int off, int n) {
    if (sc.f32) {
      sc.sF.get(off, sc.frow, 0, n);
    } else {
      sc.sb.read(off, sc.row, n);
    }
  }

  /** Maximum of the row's unmasked values [0, n) (keys from maskOff in keyMask); -∞ if none. */
  private static double rowMax(Scratch sc, int n, int[] keyMask, int maskOff) {
    double mx = Double.NEGATIVE_INFINITY;
    if (sc.f32) {
      float[] row = sc.frow;
      float fm = Float.NEGATIVE_INFINITY;
      for (int i = 0; i < n; i++) {
        if ((keyMask == null || keyMask[maskOff + i] != 0) && row[i] > fm) {
          fm = row[i];
        }
      }
      mx = fm;
    } else {
      double[] row = sc.row;
      for (int i = 0; i < n; i++) {
        if ((keyMask == null || keyMask[maskOff + i] != 0) && row[i] > mx) {
          mx = row[i];
        }
      }
    }
    return mx;
  }

  /**
   * The row's [0, n) becomes exp(scale·s − shift) rounded to the arrays' dtype (0 for masked keys);
   * returns the sum of the rounded values, so that the sum sees P as stored. Float32 takes {@link
   * FastExp} (within a few ulps of Math.exp), float64 Math.exp (the 1e-12 tests against the naive
   * path).
   */
  private static double expRow(
      Scratch sc, int n, double scale, double shift, int[] keyMask, int maskOff) {
    if (sc.f32) {
      float[] row = sc.frow;
      FastExp.exp(row, row, sc.fk, n, scale, shift);
      if (keyMask != null) {
        for (int i = 0; i < n; i++) {
          if (keyMask[maskOff + i] == 0) {
            row[i] = 0;
          }
        }
      }
      return FastExp.sum(row, n);
    }
    double[] row = sc.row;
    double sum = 0;
    for (int i = 0; i < n; i++) {
      double x = 0;
      if (keyMask == null || keyMask[maskOff + i] != 0) {
        x = Math.exp(row[i] * scale - shift);
      }
      row[i] = x;
      sum += x;
    }
    return sum;
  }

  /** P[start, ...) = {@code lead} zeros, the row's [0, n), {@code tail} zeros. */
  private static void writeP(Scratch sc, int start, int lead, int n, int tail) {
    if (sc.f32) {
      sc.pF.put(start, sc.fzeros, 0, lead);
      sc.pF.put(start + lead, sc.frow, 0, n);
      sc.pF.put(start + lead + n, sc.fzeros, 0, tail);
    } else {
      sc.pb.write(start, sc.zeros, lead);
      sc.pb.write(start + lead, sc.row, n);
      sc.pb.write(start + lead + n, sc.zeros, tail);
    }
  }

  /**
   * dS = scale · P ∘ (dP − d) over [off, off + n), with dP in the S tile and P in the P tile,
   * written over P (zero where P is: masked keys).
   */
  private static void dScores(Scratch sc, int off, int n, double scale, double d) {
    if (sc.f32) {
      float[] dp = sc.frow;
      float[] p = sc.fprow;
      sc.sF.get(off, dp, 0, n);
      sc.pF.get(off, p, 0, n);
      // d in two floats: dP − d cancels for the rows' large entries
      float dHi = (float) d;
      float dLo = (float) (d - dHi);
      float fs = (float) scale;
      for (int i = 0; i < n; i++) {
        dp[i] = fs * p[i] * ((dp[i] - dHi) - dLo);
      }
      sc.pF.put(off, dp, 0, n);
    } else {
      double[] dp = sc.row;
      double[] p = sc.prow;
      sc.sb.read(off, dp, n);
      sc.pb.read(off, p, n);
      for (int i = 0; i < n; i++) {
        dp[i] = scale * p[i] * (dp[i] - d);
      }
      sc.pb.write(off, dp, n);
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
    backward(
        c,
        batch,
        seq,
        seq,
        keyMask,
        segments,
        q,
        k,
        v,
        out,
        lse,
        dOut,
        dRow,
        dq,
        dk,
        dv,
        Tiles.DEFAULT);
  }

  /** {@link #backward} with explicit lengths and tiles. */
  static void backward(
      LlamaConfig c,
      int batch,
      int qLen,
      int kLen,
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
      INDArray dv,
      Tiles tiles) {
    checkLengths(qLen, kLen);
    int kv = c.numKvHeads();
    int g = c.numHeads() / kv;
    int hd = c.headDim();
    Geometry geo =
        new Geometry(
            qLen, kLen, g, hd, 1.0 / Math.sqrt(hd), keyMask, segmentStarts(batch, kLen, segments));
    Buf ob = Buf.of(out);
    Buf dob = Buf.of(dOut);
    int rows = batch * kv * g * qLen;
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
    int qOff = kLen - qLen;
    int blas = Gemm.blasThreads(1); // parallel over tiles instead (see Gemm.blasThreads)
    try {
      Par.rows(
          batch * kv,
          (long) qLen * kLen * hd * g,
          bkv -> {
            for (int j0 = 0; j0 < kLen; j0 += tiles.bcBwd) {
              for (int gi = 0; gi < g; gi++) {
                // query rows before position j0 see none of these keys
                int tFrom = Math.max(0, j0 - qOff) / tiles.brBwd * tiles.brBwd;
                for (int t0 = tFrom; t0 < qLen; t0 += tiles.brBwd) {
                  backwardTile(
                      geo, tiles, q, k, v, lse, dOut, dRow, dq, dk, dv, bkv, bkv / kv, gi, t0, j0);
                }
              }
            }
          });
    } finally {
      Gemm.blasThreads(blas);
    }
  }

  private static void backwardTile(
      Geometry geo,
      Tiles tiles,
      INDArray q,
      INDArray k,
      INDArray v,
      double[] lse,
      INDArray dOut,
      double[] dRow,
      INDArray dq,
      INDArray dk,
      INDArray dv,
      int bkv,
      int b,
      int gi,
      int t0,
      int j0) {
    int qLen = geo.qLen;
    int hd = geo.hd;
    int qOff = geo.qOff();
    int t1 = Math.min(qLen, t0 + tiles.brBwd);
    // rows before position j0 see none of these keys; keys after the last row's position neither
    int first = Math.max(t0, j0 - qOff);
    if (first >= t1 || geo.from(b, qOff + first) >= Math.min(geo.kLen, j0 + tiles.bcBwd)) {
      return; // (segment starts only grow along the row)
    }
    int j1 = Math.min(Math.min(geo.kLen, j0 + tiles.bcBwd), qOff + t1);
    int nr = t1 - first;
    int nc = j1 - j0;
    long qBase = (long) bkv * geo.g * qLen * hd + ((long) gi * qLen + first) * hd;
    long kBase = (long) bkv * geo.kLen * hd + (long) j0 * hd;
    int rowBase = (bkv * geo.g + gi) * qLen + first;
    Scratch sc = Scratch.get(q.dataType(), hd, tiles);
    int ld = sc.ld;
    Gemm.tile(q, qBase, hd, false, k, kBase, hd, true, sc.s, 0, ld, nr, nc, hd, 1, 0);
    for (int r = 0; r < nr; r++) {
      int p = qOff + first + r;
      int a = Math.max(j0, geo.from(b, p));
      int e = Math.min(j1 - 1, p);
      if (a > e) {
        writeP(sc, r * ld, nc, 0, 0);
        continue;
      }
      readScores(sc, r * ld + a - j0, e - a + 1);
      expRow(sc, e - a + 1, geo.scale, lse[rowBase + r], geo.keyMask, b * geo.kLen + a);
      writeP(sc, r * ld, a - j0, e - a + 1, j1 - 1 - e);
    }
    // dV_j += Pᵀ dO_i
    Gemm.tile(sc.p, 0, ld, true, dOut, qBase, hd, false, dv, kBase, hd, nc, hd, nr, 1, 1);
    // dP = dO_i V_jᵀ
    Gemm.tile(dOut, qBase, hd, false, v, kBase, hd, true, sc.s, 0, ld, nr, nc, hd, 1, 0);
    for (int r = 0; r < nr; r++) {
      int p = qOff + first + r;
      int a = Math.max(j0, geo.from(b, p));
      int e = Math.min(j1 - 1, p);
      if (a <= e) { // else P's row is zero, and so dS's
        dScores(sc, r * ld + a - j0, e - a + 1, geo.scale, dRow[rowBase + r]);
      } // outside [a, e] P's zeros are dS's
    }
    // dQ_i += dS K_j, dK_j += dSᵀ Q_i
    Gemm.tile(sc.p, 0, ld, false, k, kBase, hd, false, dq, qBase, hd, nr, hd, nc, 1, 1);
    Gemm.tile(sc.p, 0, ld, true, q, qBase, hd, false, dk, kBase, hd, nc, hd, nr, 1, 1);
  }

  private static void checkLengths(int qLen, int kLen) {
    if (qLen < 1 || qLen > kLen) {
      throw new IllegalArgumentException(
          "attention over " + qLen + " queries and " + kLen + " keys: need 1 ≤ queries ≤ keys");
    }
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

  /**
   * One thread's tiles: S (and dP), P (and dS) of up to rows × ld, the PV product, and row state;
   * kept per thread and reused by every call (no allocation per tile).
   */
  private static final class Scratch {
    final DataType dt;
    final boolean f32;
    final int hd;
    final int rows;
    final int ld;
    final INDArray s;
    final INDArray p;
    final INDArray o;
    final Buf sb;
    final Buf pb;
    final Buf obuf;
    final FloatBuffer sF; // float32: S and P as floats, read and written without widening
    final FloatBuffer pF;
    final float[] frow;
    final float[] fprow;
    final float[] fk;
    final float[] fzeros;
    final double[] m;
    final double[] l;
    final double[] row;
    final double[] prow;
    final double[] orow;
    final double[] zeros;

    private Scratch(DataType dt, int hd, int rows, int ld) {
      this.dt = dt;
      this.f32 = dt == DataType.FLOAT;
      this.hd = hd;
      this.rows = rows;
      this.ld = ld;
      s = Nd4j.create(dt, rows, ld);
      p = Nd4j.create(dt, rows, ld);
      o = Nd4j.create(dt, rows, hd);
      sb = Buf.of(s);
      pb = Buf.of(p);
      obuf = Buf.of(o);
      m = new double[rows];
      l = new double[rows];
      row = new double[ld];
      prow = new double[ld];
      orow = new double[hd];
      zeros = new double[ld];
      sF = f32 ? floats(s) : null;
      pF = f32 ? floats(p) : null;
      frow = new float[ld];
      fprow = new float[ld];
      fk = new float[ld];
      fzeros = new float[ld];
    }

    private static FloatBuffer floats(INDArray a) {
      return a.data().asNio().order(ByteOrder.nativeOrder()).asFloatBuffer();
    }

    private static final ThreadLocal<Scratch> LOCAL = new ThreadLocal<>();

    static Scratch get(DataType dt, int hd, Tiles t) {
      int rows = Math.max(t.br, t.brBwd);
      int ld = Math.max(t.bc, t.bcBwd);
      Scratch sc = LOCAL.get();
      if (sc == null || sc.dt != dt || sc.hd != hd || sc.rows < rows || sc.ld < ld) {
        sc = new Scratch(dt, hd, rows, ld);
        LOCAL.set(sc);
      }
      return sc;
    }
  }
}
