package dev.danlu.train.model;

import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.lora.LoraModule;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Preallocated activations and scratch for one micro-batch shape (batch, seq): nothing is allocated
 * inside a training step. Rows are batch * seq tokens, row-major [b, t]; "head-major" arrays are
 * [batch * heads, seq, headDim]. With gradient checkpointing only the residual stream at each layer
 * boundary is kept and one {@link LayerActs} is reused, recomputed in backward.
 */
public final class LlamaState {
  /** What one decoder layer's backward pass needs from its forward pass. */
  public static final class LayerActs {
    final INDArray xn1; // (rows, dim) input_layernorm output
    final INDArray rstd1; // (rows)
    final INDArray qh; // (batch*heads, seq, headDim) after rotary
    final INDArray kh; // (batch*kvHeads, seq, headDim) after rotary
    final INDArray vh; // (batch*kvHeads, seq, headDim)
    final INDArray probs; // (batch*heads, seq, seq) attention weights; null when tiled
    final double[] lse; // (batch*heads*seq) tiled: log-sum-exp per query row; null when eager
    final INDArray oh; // (batch*heads, seq, headDim) attention output
    final INDArray oRows; // (rows, dim) o_proj input
    final INDArray mid; // (rows, dim) residual after attention
    final INDArray xn2; // (rows, dim) post_attention_layernorm output
    final INDArray rstd2; // (rows)
    final INDArray gate; // (rows, ffn)
    final INDArray up; // (rows, ffn)
    final INDArray h; // (rows, ffn) silu(gate) * up, down_proj input
    final INDArray[] loraH; // per module (rows, r): A dropout(x), or null
    final INDArray q3; // qh viewed (batch*kvHeads, group*seq, headDim), see Attention
    final INDArray probs3; // probs viewed (batch*kvHeads, group*seq, seq), or null
    final INDArray o3; // oh viewed (batch*kvHeads, group*seq, headDim)

    LayerActs(LlamaConfig c, int batch, int seq, LoraConfig lora, DataType dt, boolean tiled) {
      int rows = batch * seq;
      int hd = c.headDim();
      xn1 = Nd4j.create(dt, rows, c.hiddenSize());
      rstd1 = Nd4j.create(dt, rows);
      qh = Nd4j.create(dt, (long) batch * c.numHeads(), seq, hd);
      kh = Nd4j.create(dt, (long) batch * c.numKvHeads(), seq, hd);
      vh = Nd4j.create(dt, (long) batch * c.numKvHeads(), seq, hd);
      probs = tiled ? null : Nd4j.create(dt, (long) batch * c.numHeads(), seq, seq);
      lse = tiled ? new double[batch * c.numHeads() * seq] : null;
      oh = Nd4j.create(dt, (long) batch * c.numHeads(), seq, hd);
      oRows = Nd4j.create(dt, rows, c.hiddenSize());
      mid = Nd4j.create(dt, rows, c.hiddenSize());
      xn2 = Nd4j.create(dt, rows, c.hiddenSize());
      rstd2 = Nd4j.create(dt, rows);
      gate = Nd4j.create(dt, rows, c.intermediateSize());
      up = Nd4j.create(dt, rows, c.intermediateSize());
      h = Nd4j.create(dt, rows, c.intermediateSize());
      q3 = grouped(c, batch, qh);
      probs3 = tiled ? null : grouped(c, batch, probs);
      o3 = grouped(c, batch, oh);
      loraH = new INDArray[LoraModule.values().length];
      if (lora != null) {
        for (LoraModule m : lora.targets()) {
          loraH[m.ordinal()] = Nd4j.create(dt, rows, lora.rank());
        }
      }
    }
  }

  public final LlamaConfig config;
  public final int batch;
  public final int seq;
  public final int rows;
  public final boolean checkpointing;

  /** Whether attention runs the tiled kernel (no [seq, seq] arrays), see {@link AttentionImpl}. */
  public final boolean tiled;

  final DataType dt;

  final INDArray[] resid; // numLayers + 1 of (rows, dim): input of layer l, final hidden state
  final LayerActs[] acts; // numLayers, or 1 when checkpointing
  final INDArray qRows; // (rows, dim) scratch: q before rotary; dq in backward
  final INDArray kRows; // (rows, kvDim)
  final INDArray vRows; // (rows, kvDim)
  final INDArray tmp; // (rows, dim) projection output before the residual add
  final INDArray xf; // (rows, dim) final norm output
  final INDArray rstdF; // (rows)

  /** (rows, vocab) logits after forward; overwritten by dLogits in backward. */
  public final INDArray logits;

  final double[] lse; // (rows) log-sum-exp per row for the loss backward
  final int[] targets; // (rows) shifted labels, -100 where ignored

  // backward
  final INDArray dResid; // (rows, dim) gradient of the residual stream
  final INDArray dXn; // (rows, dim)
  final INDArray dH; // (rows, ffn)
  final INDArray dGate; // (rows, ffn)
  final INDArray dUp; // (rows, ffn)
  final INDArray dOh; // (batch*heads, seq, headDim)
  final INDArray dQh; // (batch*heads, seq, headDim)
  final INDArray dKh; // (batch*kvHeads, seq, headDim)
  final INDArray dVh; // (batch*kvHeads, seq, headDim)
  final INDArray dO3; // dOh viewed (batch*kvHeads, group*seq, headDim)
  final INDArray dQ3; // dQh viewed likewise
  final INDArray dProbs3; // (batch*kvHeads, group*seq, seq); null when tiled
  final double[] attnD; // (batch*heads*seq) tiled: rowsum(dOut * out) per query row
  final INDArray dLoraH; // (rows, r) or null
  final INDArray[] dropScratch; // (rows, dim), (rows, ffn) x2 each, only with LoRA dropout
  final byte[] dropMask; // (rows, max(dim, ffn)) keep flags of the current module's dropout

  // what the last forward saw, for backward
  int[] inputIds;
  int[] attentionMask;

  /** Example of each token of a packed row (null: one per row), see {@link Batch#segmentIds}. */
  int[] segments;

  /** Rotary position of each token (null: its index in the row). */
  int[] positions;

  long[] sampleIds;
  long step;
  boolean dropoutOn;
  int tokenCount;
  Rope rope;

  /** A state whose attention kernel {@link AttentionImpl#AUTO} picks by {@code seq}. */
  public LlamaState(
      LlamaConfig c, int batch, int seq, LoraConfig lora, boolean checkpointing, DataType dt) {
    this(c, batch, seq, lora, checkpointing, dt, AttentionImpl.AUTO);
  }

  public LlamaState(
      LlamaConfig c,
      int batch,
      int seq,
      LoraConfig lora,
      boolean checkpointing,
      DataType dt,
      AttentionImpl attention) {
    this.config = c;
    this.tiled = attention.tiled(seq);
    this.batch = batch;
    this.seq = seq;
    this.rows = batch * seq;
    this.checkpointing = checkpointing;
    this.dt = dt;
    int dim = c.hiddenSize();
    int ffn = c.intermediateSize();
    resid = new INDArray[c.numLayers() + 1];
    for (int i = 0; i < resid.length; i++) {
      resid[i] = Nd4j.create(dt, rows, dim);
    }
    acts = new LayerActs[checkpointing ? 1 : c.numLayers()];
    for (int i = 0; i < acts.length; i++) {
      acts[i] = new LayerActs(c, batch, seq, lora, dt, tiled);
    }
    qRows = Nd4j.create(dt, rows, dim);
    kRows = Nd4j.create(dt, rows, c.kvDim());
    vRows = Nd4j.create(dt, rows, c.kvDim());
    tmp = Nd4j.create(dt, rows, dim);
    xf = Nd4j.create(dt, rows, dim);
    rstdF = Nd4j.create(dt, rows);
    logits = Nd4j.create(dt, rows, c.vocabSize());
    lse = new double[rows];
    targets = new int[rows];
    dResid = Nd4j.create(dt, rows, dim);
    dXn = Nd4j.create(dt, rows, dim);
    dH = Nd4j.create(dt, rows, ffn);
    dGate = Nd4j.create(dt, rows, ffn);
    dUp = Nd4j.create(dt, rows, ffn);
    dOh = Nd4j.create(dt, (long) batch * c.numHeads(), seq, c.headDim());
    dQh = Nd4j.create(dt, (long) batch * c.numHeads(), seq, c.headDim());
    dKh = Nd4j.create(dt, (long) batch * c.numKvHeads(), seq, c.headDim());
    dVh = Nd4j.create(dt, (long) batch * c.numKvHeads(), seq, c.headDim());
    dO3 = grouped(c, batch, dOh);
    dQ3 = grouped(c, batch, dQh);
    dProbs3 =
        tiled ? null : Nd4j.create(dt, (long) batch * c.numKvHeads(), (long) group(c) * seq, seq);
    attnD = tiled ? new double[batch * c.numHeads() * seq] : null;
    dLoraH = lora == null ? null : Nd4j.create(dt, rows, lora.rank());
    if (lora != null && lora.dropout() > 0) {
      dropScratch =
          new INDArray[] {
            Nd4j.create(dt, rows, dim),
            Nd4j.create(dt, rows, dim),
            Nd4j.create(dt, rows, ffn),
            Nd4j.create(dt, rows, ffn)
          };
      dropMask = new byte[rows * Math.max(dim, ffn)];
    } else {
      dropScratch = null;
      dropMask = null;
    }
  }

  static int group(LlamaConfig c) {
    return c.numHeads() / c.numKvHeads();
  }

  /** [batch*heads, seq, x] viewed as [batch*kvHeads, group*seq, x] (no copy: c-order). */
  public static INDArray grouped(LlamaConfig c, int batch, INDArray headMajor) {
    return headMajor.reshape(
        'c', (long) batch * c.numKvHeads(), group(c) * headMajor.size(1), headMajor.size(2));
  }

  /**
   * The last hidden state after the final norm (rows, dim), as HF's {@code hidden_states[-1]}; what
   * a value head reads after {@link Llama#forwardHidden}.
   */
  public INDArray normedHidden() {
    return xf;
  }

  /** The final hidden state (rows, dim) after the last forward (before the final norm). */
  public INDArray lastHidden() {
    return resid[resid.length - 1];
  }

  /** Non-ignored label positions in the last forward (the loss is a mean over these). */
  public int tokenCount() {
    return tokenCount;
  }
}
