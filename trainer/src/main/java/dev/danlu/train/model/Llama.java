package dev.danlu.train.model;

import static dev.danlu.train.tensor.Timers.time;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraDropout;
import dev.danlu.train.lora.LoraModule;
import dev.danlu.train.tensor.Gemm;
import dev.danlu.train.tensor.Kernels;
import dev.danlu.train.tensor.Timers;
import java.util.function.IntConsumer;
import org.nd4j.linalg.api.ndarray.INDArray;

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
    forwardLogits(w, ad, s, in);
    return causalLmLoss(s, in.labels());
  }

  /**
   * Runs the model on a batch up to the logits, left in {@code s.logits} ([batch·seq, vocab]);
   * computes no loss. An objective other than causal-LM cross-entropy (pairwise reward, DPO) reads
   * them, writes dLoss/dLogits in their place and calls {@link #backwardFromLogitGrads}.
   */
  public static void forwardLogits(LlamaWeights w, LoraAdapter ad, LlamaState s, Batch in) {
    forwardHidden(w, ad, s, in);
    time("lm head gemm", () -> Gemm.mm(s.xf, lmHead(w, ad), s.logits, false, true, 1.0, 0.0));
  }

  /**
   * Runs the model on a batch up to the final norm: {@code s.normedHidden()} ([batch·seq, dim]) is
   * the last hidden state as Hugging Face's {@code hidden_states[-1]} gives it (after {@code
   * model.norm}), what a value or reward head reads; no LM head. Backward from a loss on it: {@link
   * #backwardFromHiddenGrads}.
   */
  public static void forwardHidden(LlamaWeights w, LoraAdapter ad, LlamaState s, Batch in) {
    LlamaConfig c = w.config();
    s.tokenCount = in.batch(); // rows, until a loss counts its tokens
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
    s.segments = in.segmentIds();
    s.positions = in.positionIds();
    s.sampleIds = in.sampleIds();
    s.step = in.step();
    s.dropoutOn = in.train() && ad != null && ad.config.dropout() > 0;
    if (s.rope == null || s.rope.positions != s.seq) {
      s.rope = Rope.forLength(c, s.seq, s.dt == org.nd4j.linalg.api.buffer.DataType.FLOAT);
    }
    if (ad != null && ad.embedTokens != null) {
      time("embedding", () -> Kernels.embeddingForward(in.inputIds(), ad.embedTokens, s.resid[0]));
    } else {
      time("embedding", () -> w.embed(in.inputIds(), s.resid[0]));
    }
    for (int l = 0; l < c.numLayers(); l++) {
      layerForward(w, ad, s, l, acts(s, l));
    }
    time(
        "norm",
        () ->
            Kernels.rmsnormForward(
                s.resid[c.numLayers()], w.norm(), c.rmsNormEps(), s.xf, s.rstdF));
  }

  /**
   * HF's causal-LM loss of the logits in {@code s}: cross-entropy of logits[:, :-1] against
   * labels[:, 1:], mean over labels != -100; NaN when every label is ignored or there are none.
   */
  private static double causalLmLoss(LlamaState s, int[] labels) {
    if (labels == null) {
      s.tokenCount = 0;
      return Double.NaN;
    }
    int count = 0;
    for (int b = 0; b < s.batch; b++) {
      for (int t = 0; t < s.seq; t++) {
        int n = b * s.seq + t;
        s.targets[n] = t + 1 < s.seq ? labels[n + 1] : Kernels.IGNORE_INDEX;
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
   * The log-probability of each row's labelled tokens under the logits of the last forward: {@code
   * out[b] = Σ_t log softmax(logits[b, t])[labels[b, t+1]]} over labels[b, t+1] != -100 (TRL's
   * {@code get_batch_logps} with {@code average_log_prob=False}: a sum, not a mean). Keeps what
   * {@link #sequenceLogProbsBackward} needs; {@code s.tokenCount()} becomes the number of rows with
   * at least one labelled token (the evaluator's weight: sequences, not tokens).
   */
  public static void sequenceLogProbs(LlamaState s, int[] labels, double[] out) {
    if (labels == null) {
      throw new IllegalArgumentException("sequence log-probabilities need labels");
    }
    causalLmLoss(s, labels); // fills targets and lse; the mean it returns is not used
    int vocab = (int) s.logits.size(1);
    dev.danlu.train.tensor.Buf l = dev.danlu.train.tensor.Buf.of(s.logits);
    int rowsWithTargets = 0;
    for (int b = 0; b < s.batch; b++) {
      double sum = 0;
      boolean any = false;
      for (int t = 0; t < s.seq; t++) {
        int n = b * s.seq + t;
        if (s.targets[n] != Kernels.IGNORE_INDEX) {
          sum += l.get(n * vocab + s.targets[n]) - s.lse[n];
          any = true;
        }
      }
      out[b] = sum;
      rowsWithTargets += any ? 1 : 0;
    }
    s.tokenCount = rowsWithTargets;
  }

  /**
   * Writes dLoss/dLogits into {@code s.logits} for a loss of the rows' log-probabilities from the
   * last {@link #sequenceLogProbs}, given {@code dLogp[b]} = dLoss/d out[b] (already times the loss
   * scale); follow with {@link #backwardFromLogitGrads}. d log p(y_t) / d logits_t = onehot −
   * softmax.
   */
  public static void sequenceLogProbsBackward(LlamaState s, double[] dLogp) {
    double[] perRow = new double[s.rows];
    for (int n = 0; n < s.rows; n++) {
      perRow[n] = -dLogp[n / s.seq];
    }
    time("loss", () -> Kernels.crossEntropyBackwardRows(s.logits, s.targets, s.lse, perRow));
  }

  /**
   * The log-probability of each labelled token under the logits of the last forward, per position:
   * {@code out[n] = log softmax(logits[n])[labels[n+1]]} where labels[n+1] != -100 in the same row
   * (HF's shift), NaN elsewhere. Keeps what {@link #tokenLogProbsBackward} needs; sets {@code
   * tokenCount} to the labelled positions.
   */
  public static void tokenLogProbs(LlamaState s, int[] labels, double[] out) {
    causalLmLoss(s, labels);
    int vocab = (int) s.logits.size(1);
    dev.danlu.train.tensor.Buf l = dev.danlu.train.tensor.Buf.of(s.logits);
    for (int n = 0; n < s.rows; n++) {
      out[n] =
          s.targets[n] == Kernels.IGNORE_INDEX
              ? Double.NaN
              : l.get(n * vocab + s.targets[n]) - s.lse[n];
    }
  }

  /**
   * Writes dLoss/dLogits into {@code s.logits} given {@code dLogp[n]} = dLoss/d log p at each
   * position of the last {@link #tokenLogProbs} (0 where unlabelled).
   */
  public static void tokenLogProbsBackward(LlamaState s, double[] dLogp) {
    double[] perRow = new double[s.rows];
    for (int n = 0; n < s.rows; n++) {
      perRow[n] = -dLogp[n];
    }
    time("loss", () -> Kernels.crossEntropyBackwardRows(s.logits, s.targets, s.lse, perRow));
  }

  /**
   * Back-propagates {@code dLoss} (1 for plain training, the loss scale under fp16 loss scaling)
   * from the loss of the last forward, accumulating into the adapter's gradient buffers. Destroys
   * {@code s.logits}.
   */
  public static void backward(LlamaWeights w, LoraAdapter ad, LlamaState s, double dLoss) {
    backward(w, ad, s, dLoss, null);
  }

  /**
   * {@link #backward(LlamaWeights, LoraAdapter, LlamaState, double)} that also tells {@code
   * gradsFinal} as soon as gradients stop changing, so communication can overlap the rest: {@code
   * accept(p)} means the gradients of everything at depth {@code >= p} are final — {@code
   * numLayers} for lm_head, {@code l} for layer l's LoRA, {@code -1} for embed_tokens — called with
   * decreasing p.
   */
  public static void backward(
      LlamaWeights w, LoraAdapter ad, LlamaState s, double dLoss, IntConsumer gradsFinal) {
    double perToken = s.tokenCount == 0 ? 0.0 : dLoss / s.tokenCount;
    time("loss", () -> Kernels.crossEntropyBackward(s.logits, s.targets, s.lse, perToken));
    backwardFromLogitGrads(w, ad, s, gradsFinal);
  }

  /**
   * Back-propagates the gradient of a loss with respect to the logits, which the caller has written
   * into {@code s.logits} in place of the logits of the last forward, accumulating into the
   * adapter's gradient buffers; {@code gradsFinal} as in {@link #backward(LlamaWeights,
   * LoraAdapter, LlamaState, double, IntConsumer)} (may be null).
   */
  public static void backwardFromLogitGrads(
      LlamaWeights w, LoraAdapter ad, LlamaState s, IntConsumer gradsFinal) {
    IntConsumer done = gradsFinal != null ? gradsFinal : p -> {};
    LlamaConfig c = w.config();
    INDArray dLogits = s.logits;
    time("lm head gemm", () -> Gemm.mm(dLogits, lmHead(w, ad), s.dXn, false, false, 1.0, 0.0));
    if (ad != null && ad.lmHead != null) {
      time("lm head gemm", () -> Gemm.mm(dLogits, s.xf, ad.dLmHead, true, false, 1.0, 1.0));
    }
    done.accept(c.numLayers());
    backwardFromNormGrads(w, ad, s, done);
  }

  /**
   * {@link #backwardFromLogitGrads} for a loss on both the logits (their gradient written into
   * {@code s.logits}) and the normed last hidden state ({@code dNormed}, a value head's): the two
   * gradients meet at the final norm's output.
   */
  public static void backwardFromLogitAndHiddenGrads(
      LlamaWeights w, LoraAdapter ad, LlamaState s, INDArray dNormed, IntConsumer gradsFinal) {
    IntConsumer done = gradsFinal != null ? gradsFinal : p -> {};
    INDArray dLogits = s.logits;
    time("lm head gemm", () -> Gemm.mm(dLogits, lmHead(w, ad), s.dXn, false, false, 1.0, 0.0));
    if (ad != null && ad.lmHead != null) {
      time("lm head gemm", () -> Gemm.mm(dLogits, s.xf, ad.dLmHead, true, false, 1.0, 1.0));
    }
    Kernels.addInPlace(s.dXn, dNormed);
    done.accept(w.config().numLayers());
    backwardFromNormGrads(w, ad, s, done);
  }

  /**
   * Back-propagates the gradient of a loss with respect to the normed last hidden state of the last
   * {@link #forwardHidden} (a value head's loss): {@code dNormed} [batch·seq, dim], accumulating
   * into the adapter's gradient buffers; the head's own gradients are the caller's, and final when
   * this is called ({@code gradsFinal} hears {@code numLayers} first, as in {@link
   * #backwardFromLogitGrads}).
   */
  public static void backwardFromHiddenGrads(
      LlamaWeights w, LoraAdapter ad, LlamaState s, INDArray dNormed, IntConsumer gradsFinal) {
    IntConsumer done = gradsFinal != null ? gradsFinal : p -> {};
    s.dXn.assign(dNormed);
    done.accept(w.config().numLayers());
    backwardFromNormGrads(w, ad, s, done);
  }

  /** From {@code s.dXn} (dLoss/d normed hidden) down to the embeddings. */
  private static void backwardFromNormGrads(
      LlamaWeights w, LoraAdapter ad, LlamaState s, IntConsumer done) {
    LlamaConfig c = w.config();
    s.dResid.assign(0);
    time(
        "norm",
        () -> Kernels.rmsnormBackward(s.dXn, s.resid[c.numLayers()], w.norm(), s.rstdF, s.dResid));
    for (int l = c.numLayers() - 1; l >= 0; l--) {
      LlamaState.LayerActs a = acts(s, l);
      if (s.checkpointing) {
        layerForward(w, ad, s, l, a); // recompute this layer's activations from resid[l]
      }
      layerBackward(w, ad, s, l, a);
      done.accept(l);
    }
    if (ad != null && ad.embedTokens != null) {
      time("embedding", () -> Kernels.embeddingBackward(s.inputIds, s.dResid, ad.dEmbedTokens));
    }
    done.accept(-1);
  }

  private static LlamaState.LayerActs acts(LlamaState s, int l) {
    return s.acts[s.checkpointing ? 0 : l];
  }

  private static INDArray lmHead(LlamaWeights w, LoraAdapter ad) {
    return ad != null && ad.lmHead != null ? ad.lmHead : w.lmHeadF32();
  }

  /** resid[l] -> resid[l + 1], filling {@code a}. */
  static void layerForward(
      LlamaWeights w, LoraAdapter ad, LlamaState s, int l, LlamaState.LayerActs a) {
    LlamaConfig c = w.config();
    LlamaWeights.Layer lw = w.layers()[l];
    INDArray x = s.resid[l];
    int hd = c.headDim();
    time("norm", () -> Kernels.rmsnormForward(x, lw.inputNorm(), c.rmsNormEps(), a.xn1, a.rstd1));
    linearForward(w, ad, s, l, LoraModule.Q, a.xn1, s.qRows, a);
    linearForward(w, ad, s, l, LoraModule.K, a.xn1, s.kRows, a);
    linearForward(w, ad, s, l, LoraModule.V, a.xn1, s.vRows, a);
    Rope r = s.rope;
    time(
        "rope/permute",
        () ->
            Kernels.ropePermute(
                s.qRows, s.batch, s.seq, c.numHeads(), hd, r.cos, r.sin, 0, s.positions, a.qh));
    time(
        "rope/permute",
        () ->
            Kernels.ropePermute(
                s.kRows, s.batch, s.seq, c.numKvHeads(), hd, r.cos, r.sin, 0, s.positions, a.kh));
    time(
        "rope/permute",
        () ->
            Kernels.ropePermute(s.vRows, s.batch, s.seq, c.numKvHeads(), hd, null, null, 0, a.vh));
    if (s.tiled) {
      time(
          "attention",
          () ->
              TiledAttention.forward(
                  c, s.batch, s.seq, s.attentionMask, s.segments, a.q3, a.kh, a.vh, a.o3, a.lse));
    } else {
      time(
          "attention",
          () ->
              Attention.forward(
                  c, s.seq, s.attentionMask, s.segments, a.q3, a.kh, a.vh, a.probs3, a.o3));
    }
    time(
        "rope/permute",
        () ->
            Kernels.unpermuteRope(
                a.oh, s.batch, s.seq, c.numHeads(), hd, null, null, 0, null, a.oRows));
    linearForward(w, ad, s, l, LoraModule.O, a.oRows, s.tmp, a);
    time("residual", () -> Kernels.add(x, s.tmp, a.mid));
    time(
        "norm",
        () ->
            Kernels.rmsnormForward(a.mid, lw.postAttentionNorm(), c.rmsNormEps(), a.xn2, a.rstd2));
    linearForward(w, ad, s, l, LoraModule.GATE, a.xn2, a.gate, a);
    linearForward(w, ad, s, l, LoraModule.UP, a.xn2, a.up, a);
    time("swiglu", () -> Kernels.swigluForward(a.gate, a.up, a.h));
    linearForward(w, ad, s, l, LoraModule.DOWN, a.h, s.tmp, a);
    time("residual", () -> Kernels.add(a.mid, s.tmp, s.resid[l + 1]));
  }

  /** s.dResid holds dOut of layer l on entry and dInp of layer l on exit. */
  static void layerBackward(
      LlamaWeights w, LoraAdapter ad, LlamaState s, int l, LlamaState.LayerActs a) {
    LlamaConfig c = w.config();
    LlamaWeights.Layer lw = w.layers()[l];
    int hd = c.headDim();
    // MLP: out = mid + down(silu(gate(xn2)) * up(xn2))
    linearBackward(w, ad, s, l, LoraModule.DOWN, a.h, s.dResid, s.dH, false, a);
    time("swiglu", () -> Kernels.swigluBackward(s.dH, a.gate, a.up, s.dGate, s.dUp));
    linearBackward(w, ad, s, l, LoraModule.GATE, a.xn2, s.dGate, s.dXn, false, a);
    linearBackward(w, ad, s, l, LoraModule.UP, a.xn2, s.dUp, s.dXn, true, a);
    time(
        "norm",
        () -> Kernels.rmsnormBackward(s.dXn, a.mid, lw.postAttentionNorm(), a.rstd2, s.dResid));
    // attention: mid = x + o(attn(rope(q(xn1)), rope(k(xn1)), v(xn1)))
    linearBackward(w, ad, s, l, LoraModule.O, a.oRows, s.dResid, s.tmp, false, a);
    time(
        "rope/permute",
        () -> Kernels.ropePermute(s.tmp, s.batch, s.seq, c.numHeads(), hd, null, null, 0, s.dOh));
    if (s.tiled) {
      time(
          "attention",
          () ->
              TiledAttention.backward(
                  c,
                  s.batch,
                  s.seq,
                  s.attentionMask,
                  s.segments,
                  a.q3,
                  a.kh,
                  a.vh,
                  a.o3,
                  a.lse,
                  s.dO3,
                  s.attnD,
                  s.dQ3,
                  s.dKh,
                  s.dVh));
    } else {
      time(
          "attention",
          () ->
              Attention.backward(
                  c, s.seq, a.q3, a.kh, a.vh, a.probs3, s.dO3, s.dProbs3, s.dQ3, s.dKh, s.dVh));
    }
    Rope r = s.rope;
    time(
        "rope/permute",
        () ->
            Kernels.unpermuteRope(
                s.dQh, s.batch, s.seq, c.numHeads(), hd, r.cos, r.sin, 0, s.positions, s.qRows));
    time(
        "rope/permute",
        () ->
            Kernels.unpermuteRope(
                s.dKh, s.batch, s.seq, c.numKvHeads(), hd, r.cos, r.sin, 0, s.positions, s.kRows));
    time(
        "rope/permute",
        () ->
            Kernels.unpermuteRope(
                s.dVh, s.batch, s.seq, c.numKvHeads(), hd, null, null, 0, null, s.vRows));
    linearBackward(w, ad, s, l, LoraModule.Q, a.xn1, s.qRows, s.dXn, false, a);
    linearBackward(w, ad, s, l, LoraModule.K, a.xn1, s.kRows, s.dXn, true, a);
    linearBackward(w, ad, s, l, LoraModule.V, a.xn1, s.vRows, s.dXn, true, a);
    time(
        "norm",
        () -> Kernels.rmsnormBackward(s.dXn, s.resid[l], lw.inputNorm(), a.rstd1, s.dResid));
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
    time("gemm", () -> Gemm.mm(x, w.linear(l, m), y, false, true, 1.0, 0.0));
    if (ad == null || !ad.targets(m)) {
      return;
    }
    INDArray xd = dropped(ad, s, l, m, x, 0);
    INDArray h = a.loraH[m.ordinal()];
    time("lora gemm", () -> Gemm.mm(xd, ad.forwardA(l, m), h, false, true, 1.0, 0.0));
    time(
        "lora gemm", () -> Gemm.mm(h, ad.loraB[l][m.ordinal()], y, false, true, ad.scaling(), 1.0));
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
    time("gemm", () -> Gemm.mm(dY, w.linear(l, m), dX, false, false, 1.0, accumulate ? 1.0 : 0.0));
    if (ad == null || !ad.targets(m)) {
      return;
    }
    int mi = m.ordinal();
    INDArray h = a.loraH[mi];
    INDArray dH = s.dLoraH;
    time("lora gemm", () -> Gemm.mm(dY, ad.loraB[l][mi], dH, false, false, ad.scaling(), 0.0));
    time("lora gemm", () -> Gemm.mm(dY, h, ad.dLoraB[l][mi], true, false, ad.scaling(), 1.0));
    INDArray xd = dropped(ad, s, l, m, x, 0);
    if (ad.svd != null) {
      // AdaLoRA: the gradient of this micro-batch with respect to A ⊙ E, split into dA and dE
      time("lora gemm", () -> Gemm.mm(dH, xd, ad.dLoraAE[l][mi], true, false, 1.0, 0.0));
      time("lora svd", () -> ad.svdBackward(l, m));
    } else {
      time("lora gemm", () -> Gemm.mm(dH, xd, ad.dLoraA[l][mi], true, false, 1.0, 1.0));
    }
    INDArray aFwd = ad.forwardA(l, m);
    if (s.dropoutOn) {
      INDArray dXd = scratch(s, x, 1);
      time("lora gemm", () -> Gemm.mm(dH, aFwd, dXd, false, false, 1.0, 0.0));
      // the mask dropped() drew for xd above is still in s.dropMask
      time("lora dropout", () -> LoraDropout.applyMask(dXd, dXd, s.dropMask, ad.config.dropout()));
      time("residual", () -> Kernels.addInPlace(dX, dXd));
    } else {
      time("lora gemm", () -> Gemm.mm(dH, aFwd, dX, false, false, 1.0, 1.0));
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
