package dev.danlu.train.model;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraDropout;
import dev.danlu.train.lora.LoraModule;
import dev.danlu.train.tensor.Kernels;
import dev.danlu.train.tensor.Timers;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * LLaMA forward and backward with LoRA, as explicit per-layer functions (llm.c style). Matrix
 * products go to ND4J gemm (OpenBLAS on CPU), everything else to the fused kernels in {@link
 * Kernels}; all activations live in a preallocated {@link LlamaState}.
 *
 * <p>Gradients flow only into what is trainable: LoRA A/B of the targeted projections and, when the
 * adapter carries them, full embed_tokens / lm_head. The frozen base weights get no gradient
 * buffers, but the backward pass still propagates through them (dInp = dOut W).
 */
public final class Llama {
  private Llama() {}

  /**
   * Runs the model on a batch, leaving logits in {@code s.logits}; returns HF's loss (cross-entropy
   * of logits[:, :-1] against labels[:, 1:], mean over labels != -100), NaN when every label is
   * ignored (as PyTorch; callers report such batches) or when the batch has no labels.
   */
  public static double forward(LlamaWeights w, LoraAdapter ad, LlamaState s, Batch in) {
    LlamaConfig c = w.config();
    if (in.batch() != s.batch || in.seq() != s.seq) {
      throw new IllegalArgumentException(
          "batch shape ["
              + in.batch()
              + ", "
              + in.seq()
              + "] does not match the state's ["
              + s.batch
              + ", "
              + s.seq
              + "]");
    }
    s.inputIds = in.inputIds();
    s.attentionMask = in.attentionMask();
    s.sampleIds = in.sampleIds();
    s.step = in.step();
    s.dropoutOn = in.train() && ad != null && ad.config.dropout() > 0;
    if (s.rope == null || s.rope.positions != s.seq) {
      s.rope = Rope.forLength(c, s.seq, s.dt == org.nd4j.linalg.api.buffer.DataType.FLOAT);
    }
    INDArray embed = ad != null && ad.embedTokens != null ? ad.embedTokens : w.embedTokens();
    {
      long t0 = Timers.start();
      Kernels.embeddingForward(in.inputIds(), embed, s.resid[0]);
      Timers.stop("embedding", t0);
    }
    for (int l = 0; l < c.numLayers(); l++) {
      layerForward(w, ad, s, l, acts(s, l));
    }
    {
      long t0 = Timers.start();
      Kernels.rmsnormForward(s.resid[c.numLayers()], w.norm(), c.rmsNormEps(), s.xf, s.rstdF);
      Timers.stop("norm", t0);
    }
    {
      long t0 = Timers.start();
      Nd4j.gemm(s.xf, lmHead(w, ad), s.logits, false, true, 1.0, 0.0);
      Timers.stop("lm head gemm", t0);
    }
    if (in.labels() == null) {
      s.tokenCount = 0;
      return Double.NaN;
    }
    int count = 0;
    for (int b = 0; b < s.batch; b++) {
      for (int t = 0; t < s.seq; t++) {
        int n = b * s.seq + t;
        s.targets[n] = t + 1 < s.seq ? in.labels()[n + 1] : Kernels.IGNORE_INDEX;
        if (s.targets[n] != Kernels.IGNORE_INDEX) {
          count++;
        }
      }
    }
    s.tokenCount = count;
    long t0 = Timers.start();
    double sum = Kernels.crossEntropyForward(s.logits, s.targets, s.lse);
    Timers.stop("loss", t0);
    return count == 0 ? Double.NaN : sum / count;
  }

  /**
   * Back-propagates {@code dLoss} (1 for plain training, the loss scale under fp16 loss scaling)
   * from the loss of the last forward, accumulating into the adapter's gradient buffers. Destroys
   * {@code s.logits}.
   */
  public static void backward(LlamaWeights w, LoraAdapter ad, LlamaState s, double dLoss) {
    LlamaConfig c = w.config();
    double perToken = s.tokenCount == 0 ? 0.0 : dLoss / s.tokenCount;
    {
      long t0 = Timers.start();
      Kernels.crossEntropyBackward(s.logits, s.targets, s.lse, perToken);
      Timers.stop("loss", t0);
    }
    INDArray dLogits = s.logits;
    {
      long t0 = Timers.start();
      Nd4j.gemm(dLogits, lmHead(w, ad), s.dXn, false, false, 1.0, 0.0);
      Timers.stop("lm head gemm", t0);
    }
    if (ad != null && ad.lmHead != null) {
      {
        long t0 = Timers.start();
        Nd4j.gemm(dLogits, s.xf, ad.dLmHead, true, false, 1.0, 1.0);
        Timers.stop("lm head gemm", t0);
      }
    }
    s.dResid.assign(0);
    {
      long t0 = Timers.start();
      Kernels.rmsnormBackward(s.dXn, s.resid[c.numLayers()], w.norm(), s.rstdF, s.dResid);
      Timers.stop("norm", t0);
    }
    for (int l = c.numLayers() - 1; l >= 0; l--) {
      LlamaState.LayerActs a = acts(s, l);
      if (s.checkpointing) {
        layerForward(w, ad, s, l, a); // recompute this layer's activations from resid[l]
      }
      layerBackward(w, ad, s, l, a);
    }
    if (ad != null && ad.embedTokens != null) {
      {
        long t0 = Timers.start();
        Kernels.embeddingBackward(s.inputIds, s.dResid, ad.dEmbedTokens);
        Timers.stop("embedding", t0);
      }
    }
  }

  private static LlamaState.LayerActs acts(LlamaState s, int l) {
    return s.acts[s.checkpointing ? 0 : l];
  }

  private static INDArray lmHead(LlamaWeights w, LoraAdapter ad) {
    return ad != null && ad.lmHead != null ? ad.lmHead : w.lmHead();
  }

  /** resid[l] -> resid[l + 1], filling {@code a}. */
  static void layerForward(
      LlamaWeights w, LoraAdapter ad, LlamaState s, int l, LlamaState.LayerActs a) {
    LlamaConfig c = w.config();
    LlamaWeights.Layer lw = w.layers()[l];
    INDArray x = s.resid[l];
    int hd = c.headDim();
    {
      long t0 = Timers.start();
      Kernels.rmsnormForward(x, lw.inputNorm(), c.rmsNormEps(), a.xn1, a.rstd1);
      Timers.stop("norm", t0);
    }
    linearForward(w, ad, s, l, LoraModule.Q, a.xn1, s.qRows, a);
    linearForward(w, ad, s, l, LoraModule.K, a.xn1, s.kRows, a);
    linearForward(w, ad, s, l, LoraModule.V, a.xn1, s.vRows, a);
    Rope r = s.rope;
    {
      long t0 = Timers.start();
      Kernels.ropePermute(s.qRows, s.batch, s.seq, c.numHeads(), hd, r.cos, r.sin, 0, a.qh);
      Timers.stop("rope/permute", t0);
    }
    {
      long t0 = Timers.start();
      Kernels.ropePermute(s.kRows, s.batch, s.seq, c.numKvHeads(), hd, r.cos, r.sin, 0, a.kh);
      Timers.stop("rope/permute", t0);
    }
    {
      long t0 = Timers.start();
      Kernels.ropePermute(s.vRows, s.batch, s.seq, c.numKvHeads(), hd, null, null, 0, a.vh);
      Timers.stop("rope/permute", t0);
    }
    {
      long t0 = Timers.start();
      Attention.forward(c, s.batch, s.attentionMask, a.qh, a.kh, a.vh, a.probs, a.oh);
      Timers.stop("attention", t0);
    }
    {
      long t0 = Timers.start();
      Kernels.unpermuteRope(a.oh, s.batch, s.seq, c.numHeads(), hd, null, null, 0, a.oRows);
      Timers.stop("rope/permute", t0);
    }
    linearForward(w, ad, s, l, LoraModule.O, a.oRows, s.tmp, a);
    {
      long t0 = Timers.start();
      Kernels.add(x, s.tmp, a.mid);
      Timers.stop("residual", t0);
    }
    {
      long t0 = Timers.start();
      Kernels.rmsnormForward(a.mid, lw.postAttentionNorm(), c.rmsNormEps(), a.xn2, a.rstd2);
      Timers.stop("norm", t0);
    }
    linearForward(w, ad, s, l, LoraModule.GATE, a.xn2, a.gate, a);
    linearForward(w, ad, s, l, LoraModule.UP, a.xn2, a.up, a);
    {
      long t0 = Timers.start();
      Kernels.swigluForward(a.gate, a.up, a.h);
      Timers.stop("swiglu", t0);
    }
    linearForward(w, ad, s, l, LoraModule.DOWN, a.h, s.tmp, a);
    {
      long t0 = Timers.start();
      Kernels.add(a.mid, s.tmp, s.resid[l + 1]);
      Timers.stop("residual", t0);
    }
  }

  /** s.dResid holds dOut of layer l on entry and dInp of layer l on exit. */
  static void layerBackward(
      LlamaWeights w, LoraAdapter ad, LlamaState s, int l, LlamaState.LayerActs a) {
    LlamaConfig c = w.config();
    LlamaWeights.Layer lw = w.layers()[l];
    int hd = c.headDim();
    // MLP: out = mid + down(silu(gate(xn2)) * up(xn2))
    linearBackward(w, ad, s, l, LoraModule.DOWN, a.h, s.dResid, s.dH, false, a);
    {
      long t0 = Timers.start();
      Kernels.swigluBackward(s.dH, a.gate, a.up, s.dGate, s.dUp);
      Timers.stop("swiglu", t0);
    }
    linearBackward(w, ad, s, l, LoraModule.GATE, a.xn2, s.dGate, s.dXn, false, a);
    linearBackward(w, ad, s, l, LoraModule.UP, a.xn2, s.dUp, s.dXn, true, a);
    {
      long t0 = Timers.start();
      Kernels.rmsnormBackward(s.dXn, a.mid, lw.postAttentionNorm(), a.rstd2, s.dResid);
      Timers.stop("norm", t0);
    }
    // attention: mid = x + o(attn(rope(q(xn1)), rope(k(xn1)), v(xn1)))
    linearBackward(w, ad, s, l, LoraModule.O, a.oRows, s.dResid, s.tmp, false, a);
    {
      long t0 = Timers.start();
      Kernels.ropePermute(s.tmp, s.batch, s.seq, c.numHeads(), hd, null, null, 0, s.dOh);
      Timers.stop("rope/permute", t0);
    }
    {
      long t0 = Timers.start();
      Attention.backward(
          c, s.batch, a.qh, a.kh, a.vh, a.probs, s.dOh, s.dProbs, s.dQh, s.dKh, s.dVh);
      Timers.stop("attention", t0);
    }
    Rope r = s.rope;
    {
      long t0 = Timers.start();
      Kernels.unpermuteRope(s.dQh, s.batch, s.seq, c.numHeads(), hd, r.cos, r.sin, 0, s.qRows);
      Timers.stop("rope/permute", t0);
    }
    {
      long t0 = Timers.start();
      Kernels.unpermuteRope(s.dKh, s.batch, s.seq, c.numKvHeads(), hd, r.cos, r.sin, 0, s.kRows);
      Timers.stop("rope/permute", t0);
    }
    {
      long t0 = Timers.start();
      Kernels.unpermuteRope(s.dVh, s.batch, s.seq, c.numKvHeads(), hd, null, null, 0, s.vRows);
      Timers.stop("rope/permute", t0);
    }
    linearBackward(w, ad, s, l, LoraModule.Q, a.xn1, s.qRows, s.dXn, false, a);
    linearBackward(w, ad, s, l, LoraModule.K, a.xn1, s.kRows, s.dXn, true, a);
    linearBackward(w, ad, s, l, LoraModule.V, a.xn1, s.vRows, s.dXn, true, a);
    {
      long t0 = Timers.start();
      Kernels.rmsnormBackward(s.dXn, s.resid[l], lw.inputNorm(), a.rstd1, s.dResid);
      Timers.stop("norm", t0);
    }
  }

  /** y = x W^T (+ scaling * (dropout(x) A^T) B^T when module m is a LoRA target). */
  static void linearForward(
      LlamaWeights w,
      LoraAdapter ad,
      LlamaState s,
      int l,
      LoraModule m,
      INDArray x,
      INDArray y,
      LlamaState.LayerActs a) {
    {
      long t0 = Timers.start();
      Nd4j.gemm(x, w.layers()[l].linear(m), y, false, true, 1.0, 0.0);
      Timers.stop("gemm", t0);
    }
    if (ad == null || !ad.targets(m)) {
      return;
    }
    INDArray xd = dropped(ad, s, l, m, x, 0);
    INDArray h = a.loraH[m.ordinal()];
    {
      long t0 = Timers.start();
      Nd4j.gemm(xd, ad.loraA[l][m.ordinal()], h, false, true, 1.0, 0.0);
      Timers.stop("lora gemm", t0);
    }
    {
      long t0 = Timers.start();
      Nd4j.gemm(h, ad.loraB[l][m.ordinal()], y, false, true, ad.scaling(), 1.0);
      Timers.stop("lora gemm", t0);
    }
  }

  /**
   * Given dY of y = linear(x): dX (= or +=) dY W (+ the LoRA path), dB += scaling dY^T h, dA +=
   * (scaling dY B)^T dropout(x).
   */
  static void linearBackward(
      LlamaWeights w,
      LoraAdapter ad,
      LlamaState s,
      int l,
      LoraModule m,
      INDArray x,
      INDArray dY,
      INDArray dX,
      boolean accumulate,
      LlamaState.LayerActs a) {
    {
      long t0 = Timers.start();
      Nd4j.gemm(dY, w.layers()[l].linear(m), dX, false, false, 1.0, accumulate ? 1.0 : 0.0);
      Timers.stop("gemm", t0);
    }
    if (ad == null || !ad.targets(m)) {
      return;
    }
    int mi = m.ordinal();
    INDArray h = a.loraH[mi];
    INDArray dH = s.dLoraH;
    {
      long t0 = Timers.start();
      Nd4j.gemm(dY, ad.loraB[l][mi], dH, false, false, ad.scaling(), 0.0);
      Timers.stop("lora gemm", t0);
    }
    {
      long t0 = Timers.start();
      Nd4j.gemm(dY, h, ad.dLoraB[l][mi], true, false, ad.scaling(), 1.0);
      Timers.stop("lora gemm", t0);
    }
    INDArray xd = dropped(ad, s, l, m, x, 0);
    {
      long t0 = Timers.start();
      Nd4j.gemm(dH, xd, ad.dLoraA[l][mi], true, false, 1.0, 1.0);
      Timers.stop("lora gemm", t0);
    }
    if (s.dropoutOn) {
      INDArray dXd = scratch(s, x, 1);
      {
        long t0 = Timers.start();
        Nd4j.gemm(dH, ad.loraA[l][mi], dXd, false, false, 1.0, 0.0);
        Timers.stop("lora gemm", t0);
      }
      {
        long t0 = Timers.start();
        // the mask dropped() drew for xd above is still in s.dropMask
        LoraDropout.applyMask(dXd, dXd, s.dropMask, ad.config.dropout());
        Timers.stop("lora dropout", t0);
      }
      {
        long t0 = Timers.start();
        Kernels.addInPlace(dX, dXd);
        Timers.stop("residual", t0);
      }
    } else {
      {
        long t0 = Timers.start();
        Nd4j.gemm(dH, ad.loraA[l][mi], dX, false, false, 1.0, 1.0);
        Timers.stop("lora gemm", t0);
      }
    }
  }

  /** dropout(x) for the LoRA branch of (l, m), or x itself when dropout is off. */
  private static INDArray dropped(
      LoraAdapter ad, LlamaState s, int l, LoraModule m, INDArray x, int slot) {
    if (!s.dropoutOn) {
      return x;
    }
    long t0 = Timers.start();
    INDArray out = scratch(s, x, slot);
    int rows = (int) x.size(0);
    int width = (int) x.size(1);
    double p = ad.config.dropout();
    LoraDropout.fillMask(
        s.dropMask, rows, width, p, ad.config.seed(), s.step, s.sampleIds, s.seq, l, m);
    LoraDropout.applyMask(x, out, s.dropMask, p);
    Timers.stop("lora dropout", t0);
    return out;
  }

  private static INDArray scratch(LlamaState s, INDArray like, int slot) {
    int base = like.size(1) == s.config.hiddenSize() ? 0 : 2;
    return s.dropScratch[base + slot];
  }
}
