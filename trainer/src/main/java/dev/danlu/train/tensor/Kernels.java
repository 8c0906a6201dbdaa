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
    Par.rows(
        rows,
        dim,
        n -> {
          int base = n * dim;
          double ss = 0;
          for (int i = 0; i < dim; i++) {
            double v = x.get(base + i);
            ss += v * v;
          }
          r.set(n, 1.0 / Math.sqrt(ss / dim + eps));
          double s = r.get(n); // the stored (rounded) value, as the backward will see it
          for (int i = 0; i < dim; i++) {
            o.set(base + i, w.get(i) * (x.get(base + i) * s));
          }
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
    Par.rows(
        rows,
        dim,
        n -> {
          int base = n * dim;
          double s = r.get(n);
          double dot = 0;
          for (int i = 0; i < dim; i++) {
            dot += dy.get(base + i) * w.get(i) * x.get(base + i) * s;
          }
          double mean = dot / dim;
          for (int i = 0; i < dim; i++) {
            double g = dy.get(base + i) * w.get(i);
            dx.add(base + i, s * (g - x.get(base + i) * s * mean));
          }
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
          int p = (pos0 + t) * half;
          for (int h = 0; h < heads; h++) {
            int src = n * width + h * headDim;
            int dst = ((b * heads + h) * seq + t) * headDim;
            if (cos == null) {
              for (int i = 0; i < headDim; i++) {
                o.set(dst + i, in.get(src + i));
              }
            } else {
              for (int i = 0; i < half; i++) {
                double x1 = in.get(src + i);
                double x2 = in.get(src + half + i);
                double c = cos[p + i];
                double s = sin[p + i];
                o.set(dst + i, x1 * c - x2 * s);
                o.set(dst + half + i, x2 * c + x1 * s);
              }
            }
          }
        });
  }

  /**
   * The transpose of {@link #ropePermute}: head-major [batch, heads, seq, headDim] back to rows,
   * applying the inverse rotation (the rotation's transpose), as the backward pass needs; with
   * {@code cos == null} it only permutes (attention output, dV).
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
          int p = (pos0 + t) * half;
          for (int h = 0; h < heads; h++) {
            int dst = n * width + h * headDim;
            int src = ((b * heads + h) * seq + t) * headDim;
            if (cos == null) {
              for (int i = 0; i < headDim; i++) {
                o.set(dst + i, in.get(src + i));
              }
            } else {
              for (int i = 0; i < half; i++) {
                double y1 = in.get(src + i);
                double y2 = in.get(src + half + i);
                double c = cos[p + i];
                double s = sin[p + i];
                o.set(dst + i, y1 * c + y2 * s);
                o.set(dst + half + i, y2 * c - y1 * s);
              }
            }
          }
        });
  }

  /**
   * In-place causal softmax of scaled scores, over rows of length {@code seq} laid out [batch,
   * heads, seq] (query t = row % seq, batch = row / (heads * seq)): query t sees keys 0..t whose
   * {@code keyMask[batch * seq + j]} is non-zero (null = all valid). Masked entries become exactly
   * 0. A query with no visible key (only when the first token is padding) gets all zeros, instead
   * of HF's uniform weights over masked keys; such rows carry label -100 anyway.
   */
  public static void causalSoftmax(
      INDArray scores, int seq, int heads, int[] keyMask, double scale) {
    Buf s = Buf.of(scores);
    int rows = (int) (scores.length() / seq);
    Par.rows(
        rows,
        seq,
        r -> {
          int t = r % seq;
          int maskOff = r / (heads * seq) * seq;
          int base = r * seq;
          double max = Double.NEGATIVE_INFINITY;
          for (int j = 0; j <= t; j++) {
            if (keyMask == null || keyMask[maskOff + j] != 0) {
              max = Math.max(max, s.get(base + j) * scale);
            }
          }
          if (max == Double.NEGATIVE_INFINITY) {
            for (int j = 0; j < seq; j++) {
              s.set(base + j, 0);
            }
            return;
          }
          double sum = 0;
          for (int j = 0; j <= t; j++) {
            if (keyMask == null || keyMask[maskOff + j] != 0) {
              s.set(base + j, Math.exp(s.get(base + j) * scale - max));
              sum += s.get(base + j);
            } else {
              s.set(base + j, 0);
            }
          }
          double inv = 1.0 / sum;
          for (int j = 0; j <= t; j++) {
            s.set(base + j, s.get(base + j) * inv);
          }
          for (int j = t + 1; j < seq; j++) {
            s.set(base + j, 0);
          }
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
          double dot = 0;
          for (int j = 0; j <= t; j++) {
            dot += p.get(base + j) * d.get(base + j);
          }
          for (int j = 0; j <= t; j++) {
            d.set(base + j, scale * p.get(base + j) * (d.get(base + j) - dot));
          }
          for (int j = t + 1; j < seq; j++) {
            d.set(base + j, 0);
          }
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
          for (int i = n * cols, end = i + cols; i < end; i++) {
            double x = g.get(i);
            double s = du.get(i);
            double d = dh.get(i);
            dg.set(i, d * u.get(i) * s * (1.0 + x * (1.0 - s)));
            du.set(i, d * x * s);
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

  /** acc += x, element-wise over equal-shaped contiguous arrays. */
  public static void addInPlace(INDArray acc, INDArray x) {
    Buf a = Buf.of(acc);
    Buf b = Buf.of(x);
    int cols = (int) acc.size(acc.rank() - 1);
    int rows = (int) (acc.length() / cols);
    Par.rows(
        rows,
        cols,
        n -> {
          for (int i = n * cols, end = i + cols; i < end; i++) {
            a.set(i, a.get(i) + b.get(i));
          }
        });
  }

  /** out = x + y. */
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
          for (int i = n * cols, end = i + cols; i < end; i++) {
            o.set(i, a.get(i) + b.get(i));
          }
        });
  }
}
