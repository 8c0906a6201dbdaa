package dev.danlu.train.tensor;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Sigmoid;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Fused element-wise kernels of the LLaMA forward and backward passes (llm.c style: one function
 * per direction, gradients named after what they are the gradient of). Matrix products are not
 * here: they go to ND4J's gemm. All arrays are contiguous c-order, rows of a [rows, cols] matrix;
 * arithmetic is in double and rounded once on store, so float32 results stay within an ulp or two
 * of PyTorch's and float64 runs serve the finite-difference tests.
 */
public final class Kernels {
  private Kernels() {}

  /** out[n, :] = emb[ids[n], :]. */
  public static void embeddingForward(int[] ids, INDArray emb, INDArray out) {
    int dim = (int) emb.size(1);
    int vocab = (int) emb.size(0);
    Buf e = Buf.of(emb);
    Buf o = Buf.of(out);
    Par.rows(
        ids.length,
        dim,
        n -> {
          int id = ids[n];
          if (id < 0 || id >= vocab) {
            throw new IllegalArgumentException(
                "token id " + id + " at position " + n + " is outside the vocabulary 0.." + vocab);
          }
          for (int i = 0; i < dim; i++) {
            o.set(n * dim + i, e.get(id * dim + i));
          }
        });
  }

  /** dEmb[ids[n], :] += dOut[n, :]; serial because rows of dEmb repeat. */
  public static void embeddingBackward(int[] ids, INDArray dOut, INDArray dEmb) {
    int dim = (int) dEmb.size(1);
    Buf g = Buf.of(dOut);
    Buf d = Buf.of(dEmb);
    for (int n = 0; n < ids.length; n++) {
      int base = ids[n] * dim;
      for (int i = 0; i < dim; i++) {
        d.add(base + i, g.get(n * dim + i));
      }
    }
  }

  /**
   * HF LlamaRMSNorm: out = weight * x / sqrt(mean(x^2) + eps), per row. {@code rstd[n]} keeps
   * 1/sqrt(mean + eps) for the backward pass.
   */
  public static void rmsnormForward(
      INDArray inp, INDArray weight, double eps, INDArray out, INDArray rstd) {
    int dim = (int) inp.size(1);
    int rows = (int) inp.size(0);
    Buf x = Buf.of(inp);
    Buf w = Buf.of(weight);
    Buf o = Buf.of(out);
    Buf r = Buf.of(rstd);
    double[] wv = new double[dim];
    w.read(0, wv, dim);
    Par.rows(
        rows,
        dim,
        n -> {
          int base = n * dim;
          double[] xv = Buf.row(0, dim);
          x.read(base, xv, dim);
          double ss = 0;
          for (int i = 0; i < dim; i++) {
            ss += xv[i] * xv[i];
          }
          r.set(n, 1.0 / Math.sqrt(ss / dim + eps));
          double s = r.get(n); // the stored (rounded) value, as the backward will see it
          for (int i = 0; i < dim; i++) {
            xv[i] = wv[i] * (xv[i] * s);
          }
          o.write(base, xv, dim);
        });
  }

  /**
   * dInp += d/dx of rmsnorm, given dOut. With xhat = x * rstd and g = dOut * weight: dx = rstd * (g
   * - xhat * mean(g * xhat)). The weight is frozen (never trained here), so no dWeight.
   */
  public static void rmsnormBackward(
      INDArray dOut, INDArray inp, INDArray weight, INDArray rstd, INDArray dInp) {
    int dim = (int) inp.size(1);
    int rows = (int) inp.size(0);
    Buf dy = Buf.of(dOut);
    Buf x = Buf.of(inp);
    Buf w = Buf.of(weight);
    Buf r = Buf.of(rstd);
    Buf dx = Buf.of(dInp);
    double[] wv = new double[dim];
    w.read(0, wv, dim);
    Par.rows(
        rows,
        dim,
        n -> {
          int base = n * dim;
          double s = r.get(n);
          double[] dyv = Buf.row(0, dim);
          double[] xv = Buf.row(1, dim);
          double[] dxv = Buf.row(2, dim);
          dy.read(base, dyv, dim);
          x.read(base, xv, dim);
          dx.read(base, dxv, dim);
          double dot = 0;
          for (int i = 0; i < dim; i++) {
            dot += dyv[i] * wv[i] * xv[i] * s;
          }
          double mean = dot / dim;
          for (int i = 0; i < dim; i++) {
            double g = dyv[i] * wv[i];
            // as Buf.add: the increment is rounded, then added in the element type
            dxv[i] = dx.round(dxv[i] + dx.round(s * (g - xv[i] * s * mean)));
          }
          dx.write(base, dxv, dim);
        });
  }

  /**
   * Copies rows [batch*seq, heads*headDim] into head-major [batch, heads, seq, headDim] and applies
   * HF's rotate_half rotary embedding on the way (x1 = first half, x2 = second half of a head: out1
   * = x1 cos - x2 sin, out2 = x2 cos + x1 sin). {@code cos}/{@code sin} are [positions, headDim/2];
   * row t uses position {@code pos0 + t}. With {@code cos == null} it only permutes (V).
   */
  public static void ropePermute(
      INDArray rows,
      int batch,
      int seq,
      int heads,
      int headDim,
      double[] cos,
      double[] sin,
      int pos0,
      INDArray out) {
    ropePermute(rows, batch, seq, heads, headDim, cos, sin, pos0, null, out);
  }

  /**
   * As {@link #ropePermute(INDArray, int, int, int, int, double[], double[], int, INDArray)}, with
   * row n = b * seq + t at position {@code positions[n]} when {@code positions} is not null (packed
   * rows, whose positions restart at each example).
   */
  public static void ropePermute(
      INDArray rows,
      int batch,
      int seq,
      int heads,
      int headDim,
      double[] cos,
      double[] sin,
      int pos0,
      int[] positions,
      INDArray out) {
    Buf in = Buf.of(rows);
    Buf o = Buf.of(out);
    int half = headDim / 2;
    int width = heads * headDim;
    Par.rows(
        batch * seq,
        width,
        n -> {
          int b = n / seq;
          int t = n % seq;
          int p = (positions == null ? pos0 + t : positions[n]) * half;
          double[] row = Buf.row(0, width);
          double[] head = Buf.row(1, headDim);
          in.read(n * width, row, width);
          for (int h = 0; h < heads; h++) {
            int src = h * headDim;
            int dst = ((b * heads + h) * seq + t) * headDim;
            if (cos == null) {
              System.arraycopy(row, src, head, 0, headDim);
            } else {
              for (int i = 0; i < half; i++) {
                double x1 = row[src + i];
                double x2 = row[src + half + i];
                double c = cos[p + i];
                double s = sin[p + i];
                head[i] = x1 * c - x2 * s;
                head[half + i] = x2 * c + x1 * s;
              }
            }
            o.write(dst, head, headDim);
          }
        });
  }

  /**
   * {@link #unpermuteRope(INDArray, int, int, int, int, double[], double[], int, int[], INDArray)}
   * with row t at position {@code pos0 + t}.
   */
  public static void unpermuteRope(
      INDArray headMajor,
      int batch,
      int seq,
      int heads,
      int headDim,
      double[] cos,
      double[] sin,
      int pos0,
      INDArray rows) {
    unpermuteRope(headMajor, batch, seq, heads, headDim, cos, sin, pos0, null, rows);
  }

  /**
   * The transpose of {@link #ropePermute}: head-major [batch, heads, seq, headDim] back to rows,
   * applying the inverse rotation (the rotation's transpose), as the backward pass needs; with
   * {@code cos == null} it only permutes (attention output, dV); {@code positions} as in {@link
   * #ropePermute(INDArray, int, int, int, int, double[], double[], int, int[], INDArray)}.
   */
  public static void unpermuteRope(
      INDArray headMajor,
      int batch,
      int seq,
      int heads,
      int headDim,
      double[] cos,
      double[] sin,
      int pos0,
      int[] positions,
      INDArray rows) {
    Buf in = Buf.of(headMajor);
    Buf o = Buf.of(rows);
    int half = headDim / 2;
    int width = heads * headDim;
    Par.rows(
        batch * seq,
        width,
        n -> {
          int b = n / seq;
          int t = n % seq;
          int p = (positions == null ? pos0 + t : positions[n]) * half;
          double[] row = Buf.row(0, width);
          double[] head = Buf.row(1, headDim);
          for (int h = 0; h < heads; h++) {
            int dst = h * headDim;
            in.read(((b * heads + h) * seq + t) * headDim, head, headDim);
            if (cos == null) {
              System.arraycopy(head, 0, row, dst, headDim);
            } else {
              for (int i = 0; i < half; i++) {
                double y1 = head[i];
                double y2 = head[half + i];
                double c = cos[p + i];
                double s = sin[p + i];
                row[dst + i] = y1 * c + y2 * s;
                row[dst + half + i] = y2 * c - y1 * s;
              }
            }
          }
          o.write(n * width, row, width);
        });
  }

  /**
   * In-place causal softmax of scaled scores, over rows of length {@code seq} laid out [batch,
   * heads, seq] (query t = row % seq, batch = row / (heads * seq)): query t sees keys 0..t whose
   * {@code keyMask[batch * seq + j]} is non-zero (null = all valid) and, when {@code segments} is
   * not null, whose {@code segments[batch * seq + j]} equals the query's (a packed row: each
   * example attends only to itself). Masked entries become exactly 0. A query with no visible key
   * (only when the first token is padding) gets all zeros, instead of HF's uniform weights over
   * masked keys; such rows carry label -100 anyway.
   */
  public static void causalSoftmax(
      INDArray scores, int seq, int heads, int[] keyMask, int[] segments, double scale) {
    Buf s = Buf.of(scores);
    int rows = (int) (scores.length() / seq);
    Par.rows(
        rows,
        seq,
        r -> {
          int t = r % seq;
          int maskOff = r / (heads * seq) * seq;
          int base = r * seq;
          double[] v = Buf.row(0, seq);
          s.read(base, v, t + 1);
          double max = Double.NEGATIVE_INFINITY;
          // a segment is a contiguous run, so the query's starts at the first key with its id
          int j0 = 0;
          if (segments != null) {
            int seg = segments[maskOff + t];
            j0 = t;
            while (j0 > 0 && segments[maskOff + j0 - 1] == seg) {
              j0--;
            }
          }
          java.util.Arrays.fill(v, 0, j0, 0.0);
          for (int j = j0; j <= t; j++) {
            if (keyMask == null || keyMask[maskOff + j] != 0) {
              max = Math.max(max, v[j] * scale);
            }
          }
          if (max == Double.NEGATIVE_INFINITY) {
            java.util.Arrays.fill(v, 0, seq, 0.0);
            s.write(base, v, seq);
            return;
          }
          double sum = 0;
          for (int j = j0; j <= t; j++) {
            if (keyMask == null || keyMask[maskOff + j] != 0) {
              v[j] = s.round(Math.exp(v[j] * scale - max)); // the sum sees the stored values
              sum += v[j];
            } else {
              v[j] = 0;
            }
          }
          double inv = 1.0 / sum;
          for (int j = j0; j <= t; j++) {
            v[j] *= inv;
          }
          java.util.Arrays.fill(v, t + 1, seq, 0.0);
          s.write(base, v, seq);
        });
  }

  /**
   * Softmax backward in place over rows laid out as in {@link #causalSoftmax}: dProbs becomes
   * dScores = scale * P * (dP - sum_j dP_j P_j), where {@code scale} is the 1/sqrt(headDim) applied
   * before the softmax.
   */
  public static void softmaxBackward(INDArray probs, INDArray dProbs, int seq, double scale) {
    Buf p = Buf.of(probs);
    Buf d = Buf.of(dProbs);
    int rows = (int) (probs.length() / seq);
    Par.rows(
        rows,
        seq,
        r -> {
          int t = r % seq;
          int base = r * seq;
          double[] pv = Buf.row(0, seq);
          double[] dv = Buf.row(1, seq);
          p.read(base, pv, t + 1);
          d.read(base, dv, t + 1);
          double dot = 0;
          for (int j = 0; j <= t; j++) {
            dot += pv[j] * dv[j];
          }
          for (int j = 0; j <= t; j++) {
            dv[j] = scale * pv[j] * (dv[j] - dot);
          }
          java.util.Arrays.fill(dv, t + 1, seq, 0.0);
          d.write(base, dv, seq);
        });
  }

  /**
   * SwiGLU: h = silu(g) * u with silu(g) = g * sigmoid(g). The sigmoid is ND4J's native (SIMD)
   * transform: Math.exp in a Java loop was 6x slower and this was the largest element-wise cost of
   * a 7B layer.
   */
  public static void swigluForward(INDArray gate, INDArray up, INDArray out) {
    Nd4j.exec(new Sigmoid(gate, out));
    out.muli(gate).muli(up);
  }

  /**
   * dGate = dH * u * silu'(g), dUp = dH * silu(g), with silu'(g) = s (1 + g (1 - s)) and s =
   * sigmoid(g), computed natively into dUp first.
   */
  public static void swigluBackward(
      INDArray dOut, INDArray gate, INDArray up, INDArray dGate, INDArray dUp) {
    Nd4j.exec(new Sigmoid(gate, dUp));
    Buf dh = Buf.of(dOut);
    Buf g = Buf.of(gate);
    Buf u = Buf.of(up);
    Buf dg = Buf.of(dGate);
    Buf du = Buf.of(dUp);
    int cols = (int) gate.size(1);
    Par.rows(
        (int) gate.size(0),
        cols,
        n -> {
          for (int c0 = 0; c0 < cols; c0 += CHUNK) {
            int i0 = n * cols + c0;
            int len = Math.min(CHUNK, cols - c0);
            double[] gv = Buf.row(0, len);
            double[] sv = Buf.row(1, len);
            double[] dv = Buf.row(2, len);
            double[] uv = Buf.row(3, len);
            g.read(i0, gv, len);
            du.read(i0, sv, len);
            dh.read(i0, dv, len);
            u.read(i0, uv, len);
            for (int i = 0; i < len; i++) {
              double x = gv[i];
              double s = sv[i];
              double d = dv[i];
              uv[i] = d * uv[i] * s * (1.0 + x * (1.0 - s)); // dGate
              sv[i] = d * x * s; // dUp
            }
            dg.write(i0, uv, len);
            du.write(i0, sv, len);
          }
        });
  }

  /**
   * Cross-entropy per row against {@code targets[n]} (-100 = ignored). Returns the summed loss;
   * {@code lse[n]} keeps log-sum-exp for the backward pass.
   */
  public static double crossEntropyForward(INDArray logits, int[] targets, double[] lse) {
    int vocab = (int) logits.size(1);
    Buf l = Buf.of(logits);
    double[] rowLoss = new double[targets.length];
    Par.rows(
        targets.length,
        vocab,
        n -> {
          if (targets[n] == IGNORE_INDEX) {
            return;
          }
          if (targets[n] < 0 || targets[n] >= vocab) {
            throw new IllegalArgumentException(
                "label " + targets[n] + " is outside the vocabulary 0.." + vocab);
          }
          int base = n * vocab;
          double max = Double.NEGATIVE_INFINITY;
          for (int i = 0; i < vocab; i++) {
            max = Math.max(max, l.get(base + i));
          }
          double sum = 0;
          for (int i = 0; i < vocab; i++) {
            sum += Math.exp(l.get(base + i) - max);
          }
          lse[n] = max + Math.log(sum);
          rowLoss[n] = lse[n] - l.get(base + targets[n]);
        });
    double total = 0;
    for (double v : rowLoss) {
      total += v;
    }
    return total;
  }

  /** Elements per row chunk of the long-row kernels: four chunks of doubles stay in L1/L2. */
  private static final int CHUNK = 2048;

  /** Index that marks a label excluded from the loss (PyTorch's ignore_index). */
  public static final int IGNORE_INDEX = -100;

  /**
   * Overwrites logits with dLogits = dLossPerToken * (softmax - onehot) on rows with a target and
   * with 0 on ignored rows.
   */
  public static void crossEntropyBackward(
      INDArray logits, int[] targets, double[] lse, double dLossPerToken) {
    int vocab = (int) logits.size(1);
    Buf l = Buf.of(logits);
    Par.rows(
        targets.length,
        vocab,
        n -> {
          int base = n * vocab;
          if (targets[n] == IGNORE_INDEX) {
            for (int i = 0; i < vocab; i++) {
              l.set(base + i, 0);
            }
            return;
          }
          for (int i = 0; i < vocab; i++) {
            double p = Math.exp(l.get(base + i) - lse[n]);
            l.set(base + i, dLossPerToken * (i == targets[n] ? p - 1.0 : p));
          }
        });
  }

  /**
   * {@link #crossEntropyBackward} with a scale per row instead of one per token: row n gets dLogits
   * = {@code perRow[n]} * (softmax - onehot) where it has a target, 0 where ignored. A
   * sequence-level loss (DPO's log-probability sums) scales each sequence's tokens alike.
   */
  public static void crossEntropyBackwardRows(
      INDArray logits, int[] targets, double[] lse, double[] perRow) {
    int vocab = (int) logits.size(1);
    Buf l = Buf.of(logits);
    Par.rows(
        targets.length,
        vocab,
        n -> {
          int base = n * vocab;
          if (targets[n] == IGNORE_INDEX) {
            for (int i = 0; i < vocab; i++) {
              l.set(base + i, 0);
            }
            return;
          }
          double g = perRow[n];
          for (int i = 0; i < vocab; i++) {
            double p = Math.exp(l.get(base + i) - lse[n]);
            l.set(base + i, g * (i == targets[n] ? p - 1.0 : p));
          }
        });
  }

  /** acc += x, element-wise over equal-shaped contiguous arrays. */
  public static void addInPlace(INDArray acc, INDArray x) {
    add(acc, x, acc); // add reads each chunk of both inputs before writing it: aliasing is safe
  }

  /** out = x + y (out may be x or y). */
  public static void add(INDArray x, INDArray y, INDArray out) {
    Buf a = Buf.of(x);
    Buf b = Buf.of(y);
    Buf o = Buf.of(out);
    int cols = (int) x.size(x.rank() - 1);
    int rows = (int) (x.length() / cols);
    Par.rows(
        rows,
        cols,
        n -> {
          for (int c0 = 0; c0 < cols; c0 += CHUNK) {
            int i0 = n * cols + c0;
            int len = Math.min(CHUNK, cols - c0);
            double[] av = Buf.row(0, len);
            double[] bv = Buf.row(1, len);
            a.read(i0, av, len);
            b.read(i0, bv, len);
            for (int i = 0; i < len; i++) {
              av[i] += bv[i];
            }
            o.write(i0, av, len);
          }
        });
  }
}
