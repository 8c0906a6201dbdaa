package dev.danlu.train.model;

import dev.danlu.train.lora.LoraModule;
import dev.danlu.train.tensor.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * One decode step for several sequences at once, for continuous batching ({@code danlu serve}): row
 * b feeds one token of sequence b at its own position; every projection, the MLP and the LM head
 * are one gemm over the B rows (the weights are read once per step, not once per sequence), and
 * attention runs per row over that sequence's own KV cache, a {@link Generator} (filled beforehand
 * by {@link Generator#feed}, the prompt prefill). Sequences may join or leave between steps: a step
 * takes whichever generators it is given.
 *
 * <p>Arithmetic: a row's attention, norms, SwiGLU and residual adds are the code of {@link
 * Generator#step} (see {@link Generator#attendRow}); only the gemms differ, because BLAS may sum a
 * product over B rows in another order (other kernels, other blocking) than over one row. So a
 * row's logits equal the batch-1 step's up to float rounding, not bit for bit (the tests bound the
 * difference and check that greedy tokens agree). For a given batch composition the result is
 * fixed.
 */
public final class BatchDecoder {
  private final LlamaWeights w;
  private final LlamaConfig c;
  private final Scratch[] scratch; // per batch size, made on first use

  /** Decodes up to {@code maxBatch} rows per step. */
  public BatchDecoder(LlamaWeights w, int maxBatch) {
    if (maxBatch < 1) {
      throw new IllegalArgumentException("max batch must be >= 1, got " + maxBatch);
    }
    this.w = w;
    this.c = w.config();
    this.scratch = new Scratch[maxBatch + 1];
  }

  public int maxBatch() {
    return scratch.length - 1;
  }

  /** The step's activations for B rows, kept between steps (no allocation inside a step). */
  private static final class Scratch {
    final INDArray x; // (B, dim) residual stream
    final INDArray xn; // (B, dim)
    final INDArray rstd; // (B)
    final INDArray q; // (B, dim)
    final INDArray k; // (B, kvDim)
    final INDArray v; // (B, kvDim)
    final INDArray att; // (B, dim)
    final INDArray tmp; // (B, dim)
    final INDArray gate; // (B, ffn)
    final INDArray up; // (B, ffn)
    final INDArray h; // (B, ffn)
    final INDArray logits; // (B, vocab)
    final INDArray[] qRow; // B views (1, dim) of q, likewise below
    final INDArray[] kRow;
    final INDArray[] vRow;
    final INDArray[] attRow;

    Scratch(LlamaConfig c, DataType dt, int b) {
      x = Nd4j.create(dt, b, c.hiddenSize());
      xn = Nd4j.create(dt, b, c.hiddenSize());
      rstd = Nd4j.create(dt, b);
      q = Nd4j.create(dt, b, c.hiddenSize());
      k = Nd4j.create(dt, b, c.kvDim());
      v = Nd4j.create(dt, b, c.kvDim());
      att = Nd4j.create(dt, b, c.hiddenSize());
      tmp = Nd4j.create(dt, b, c.hiddenSize());
      gate = Nd4j.create(dt, b, c.intermediateSize());
      up = Nd4j.create(dt, b, c.intermediateSize());
      h = Nd4j.create(dt, b, c.intermediateSize());
      logits = Nd4j.create(dt, b, c.vocabSize());
      qRow = new INDArray[b];
      kRow = new INDArray[b];
      vRow = new INDArray[b];
      attRow = new INDArray[b];
      for (int i = 0; i < b; i++) {
        qRow[i] = row(q, i);
        kRow[i] = row(k, i);
        vRow[i] = row(v, i);
        attRow[i] = row(att, i);
      }
    }
  }

  /** Row i of a (B, n) matrix as a (1, n) view (writes go through to the matrix). */
  private static INDArray row(INDArray m, int i) {
    return m.get(NDArrayIndex.interval(i, i + 1), NDArrayIndex.all());
  }

  /**
   * Feeds {@code tokens[b]} at position {@code positions[b]} of sequence {@code seqs[b]} (each
   * generator's cache must hold positions 0 .. positions[b] - 1 and no two rows may share a
   * generator) and returns each row's next-token logits.
   */
  public float[][] step(Generator[] seqs, int[] tokens, int[] positions) {
    int b = seqs.length;
    if (b < 1 || b > maxBatch() || tokens.length != b || positions.length != b) {
      throw new IllegalArgumentException(
          "a step takes 1.."
              + maxBatch()
              + " rows with one token and one position each, got "
              + b
              + " sequences, "
              + tokens.length
              + " tokens, "
              + positions.length
              + " positions");
    }
    for (int i = 0; i < b; i++) {
      if (seqs[i].weights() != w) {
        throw new IllegalArgumentException("row " + i + ": a generator over other weights");
      }
      for (int j = 0; j < i; j++) {
        if (seqs[i] == seqs[j]) {
          throw new IllegalArgumentException("rows " + j + " and " + i + " share a generator");
        }
      }
    }
    Scratch s = scratch[b];
    if (s == null) {
      s = scratch[b] = new Scratch(c, w.dataType(), b);
    }
    w.embed(tokens, s.x);
    for (int l = 0; l < c.numLayers(); l++) {
      LlamaWeights.Layer lw = w.layers()[l];
      Kernels.rmsnormForward(s.x, lw.inputNorm(), c.rmsNormEps(), s.xn, s.rstd);
      Nd4j.gemm(s.xn, w.linear(l, LoraModule.Q), s.q, false, true, 1.0, 0.0);
      Nd4j.gemm(s.xn, w.linear(l, LoraModule.K), s.k, false, true, 1.0, 0.0);
      Nd4j.gemm(s.xn, w.linear(l, LoraModule.V), s.v, false, true, 1.0, 0.0);
      for (int i = 0; i < b; i++) {
        seqs[i].attendRow(l, positions[i], s.qRow[i], s.kRow[i], s.vRow[i], s.attRow[i]);
      }
      Nd4j.gemm(s.att, w.linear(l, LoraModule.O), s.tmp, false, true, 1.0, 0.0);
      Kernels.addInPlace(s.x, s.tmp);
      Kernels.rmsnormForward(s.x, lw.postAttentionNorm(), c.rmsNormEps(), s.xn, s.rstd);
      Nd4j.gemm(s.xn, w.linear(l, LoraModule.GATE), s.gate, false, true, 1.0, 0.0);
      Nd4j.gemm(s.xn, w.linear(l, LoraModule.UP), s.up, false, true, 1.0, 0.0);
      Kernels.swigluForward(s.gate, s.up, s.h);
      Nd4j.gemm(s.h, w.linear(l, LoraModule.DOWN), s.tmp, false, true, 1.0, 0.0);
      Kernels.addInPlace(s.x, s.tmp);
    }
    Kernels.rmsnormForward(s.x, w.norm(), c.rmsNormEps(), s.xn, s.rstd);
    Nd4j.gemm(s.xn, w.lmHeadF32(), s.logits, false, true, 1.0, 0.0);
    float[][] out = new float[b][];
    for (int i = 0; i < b; i++) {
      out[i] = s.logits.getRow(i).toFloatVector();
    }
    return out;
  }
}
