package dev.danlu.train.lora;

import dev.danlu.train.checkpoint.VocabResize;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.tensor.Buf;
import java.util.ArrayList;
import java.util.List;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The trainable state of a LoRA fine-tune: per targeted projection {@code loraA} (r, in) and {@code
 * loraB} (out, r) with y = W x + scaling * B A dropout(x), plus optional full copies of
 * embed_tokens and lm_head (PEFT's modules_to_save). Every trainable tensor has a gradient buffer
 * of the same shape; frozen base weights have none.
 */
public final class LoraAdapter {
  /**
   * A trainable tensor under its PEFT key, with its gradient (both contiguous c-order float32 in
   * training). {@link #values()} / {@link #grads()} are zero-copy flat views for optimizer and ZeRO
   * code that works on flat buffers: writes through them update the model.
   */
  public record NamedParam(String name, INDArray value, INDArray grad) {
    public java.nio.FloatBuffer values() {
      return flat(value);
    }

    public java.nio.FloatBuffer grads() {
      return flat(grad);
    }

    public int size() {
      return Math.toIntExact(value.length());
    }

    static java.nio.FloatBuffer flat(INDArray a) {
      if (a.dataType() != DataType.FLOAT) {
        throw new IllegalStateException("flat float views need FLOAT arrays, not " + a.dataType());
      }
      int off = Math.toIntExact(a.offset());
      return a.data().asNioFloat().slice(off, Math.toIntExact(a.length()));
    }
  }

  public final LoraConfig config;
  public final LlamaConfig model;

  /** [layer][module.ordinal()] (r, in); null where the module is not targeted. */
  public final INDArray[][] loraA;

  /** [layer][module.ordinal()] (out, r). */
  public final INDArray[][] loraB;

  public final INDArray[][] dLoraA;
  public final INDArray[][] dLoraB;

  /** (vocab, dim) trained copy of embed_tokens, or null when frozen. */
  public final INDArray embedTokens;

  public final INDArray dEmbedTokens;

  /** (vocab, dim) trained copy of lm_head, or null when frozen. */
  public final INDArray lmHead;

  public final INDArray dLmHead;

  /**
   * AdaLoRA (PEFT's SVD form y = W x + B (A ⊙ E) x · lora_alpha / (ranknum + 1e-5)): its
   * hyper-parameters, or null for plain LoRA. Then {@link #loraE} holds the singular values (r, 1)
   * per target, {@link #loraAE} the product A ⊙ E the forward multiplies by ({@link #syncSvd}), and
   * {@link #dLoraAE} backward's gradient with respect to that product, which {@link #svdBackward}
   * splits into dA and dE.
   */
  public final AdaLoraConfig svd;

  public final INDArray[][] loraE;
  public final INDArray[][] dLoraE;
  public final INDArray[][] loraAE;
  public final INDArray[][] dLoraAE;

  /**
   * AdaLoRA's current rank pattern, [layer][module.ordinal()][rank index] = kept; null until the
   * allocator first masks (PEFT's {@code rank_pattern}).
   */
  public boolean[][][] rankPattern;

  private LoraAdapter(
      LoraConfig config,
      LlamaConfig model,
      INDArray[][] loraA,
      INDArray[][] loraB,
      INDArray embedTokens,
      INDArray lmHead) {
    this(config, model, loraA, loraB, embedTokens, lmHead, null, null);
  }

  private LoraAdapter(
      LoraConfig config,
      LlamaConfig model,
      INDArray[][] loraA,
      INDArray[][] loraB,
      INDArray embedTokens,
      INDArray lmHead,
      AdaLoraConfig svd,
      INDArray[][] loraE) {
    this.svd = svd;
    this.loraE = loraE;
    this.dLoraE = loraE == null ? null : zerosLike(loraE);
    this.loraAE = loraE == null ? null : zerosLike(loraA);
    this.dLoraAE = loraE == null ? null : zerosLike(loraA);
    this.config = config;
    this.model = model;
    this.loraA = loraA;
    this.loraB = loraB;
    this.dLoraA = zerosLike(loraA);
    this.dLoraB = zerosLike(loraB);
    this.embedTokens = embedTokens;
    this.lmHead = lmHead;
    this.dEmbedTokens =
        embedTokens == null ? null : Nd4j.zeros(embedTokens.dataType(), embedTokens.shape());
    this.dLmHead = lmHead == null ? null : Nd4j.zeros(lmHead.dataType(), lmHead.shape());
  }

  /**
   * A fresh adapter: A ~ kaiming_uniform(a=sqrt(5)) as PyTorch's Linear init, which for A (r, in)
   * is U(-1/sqrt(in), 1/sqrt(in)) (gain sqrt(2/(1+a^2)) = sqrt(1/3), bound = gain *
   * sqrt(3/fan_in)); B = 0, so the adapted model starts equal to the base. Values are keyed by
   * (seed, layer, module), independent of which other modules are targeted. Full copies of
   * embed_tokens / lm_head start from the base (untied, as PEFT's modules_to_save copies are).
   */
  public static LoraAdapter init(LoraConfig lc, LlamaWeights base) {
    return init(lc, base, base.config().vocabSize(), VocabResize.Init.NORMAL);
  }

  /**
   * Resized copy of a (vocab, dim) matrix through the checkpoint package's VocabResize (new rows
   * N(0, 0.02) as transformers 4.35, or the mean of old rows), seeded by (seed, tag) so that
   * embed_tokens and an untied lm_head get independent new rows.
   */
  private static INDArray resized(
      INDArray old, int newVocab, VocabResize.Init rowInit, long seed, int tag, DataType dt) {
    int rows = (int) old.size(0);
    int cols = (int) old.size(1);
    float[] data = old.castTo(DataType.FLOAT).reshape(-1).toFloatVector();
    float[] out =
        VocabResize.resize(
            data, rows, cols, newVocab, rowInit, 0.02, CounterRng.key(seed, 0x70CAB, tag));
    return LlamaWeights.fromFloats(out, new long[] {newVocab, cols}, dt);
  }

  /**
   * A fresh adapter whose trained embed_tokens / lm_head copies are resized to {@code newVocab}
   * rows (see {@link VocabResize}); both must be trained (modules_to_save) when the size changes,
   * since the frozen base matrices cannot hold new tokens. With tied base embeddings the LM head
   * starts as a copy of the resized embeddings, as HF re-ties them after a resize.
   */
  public static LoraAdapter init(
      LoraConfig lc, LlamaWeights base, int newVocab, VocabResize.Init rowInit) {
    LlamaConfig c = base.config();
    DataType dt = base.dataType();
    int layers = c.numLayers();
    int nm = LoraModule.values().length;
    INDArray[][] a = new INDArray[layers][nm];
    INDArray[][] b = new INDArray[layers][nm];
    for (int l = 0; l < layers; l++) {
      for (LoraModule m : lc.targets()) {
        long[] wShape = LlamaWeights.linearShape(c, m);
        long out = wShape[0];
        long in = wShape[1];
        INDArray aa = Nd4j.create(dt, lc.rank(), in);
        Buf buf = Buf.of(aa);
        double bound = 1.0 / Math.sqrt(in);
        long key = CounterRng.key(lc.seed(), 0x10AA, l, m.ordinal());
        for (int i = 0; i < buf.length(); i++) {
          buf.set(i, (2 * CounterRng.uniform(key, i) - 1) * bound);
        }
        a[l][m.ordinal()] = aa;
        b[l][m.ordinal()] = Nd4j.zeros(dt, out, lc.rank());
      }
    }
    if (newVocab != c.vocabSize() && !(lc.trainEmbedTokens() && lc.trainLmHead())) {
      throw new IllegalArgumentException(
          "resizing the vocabulary "
              + c.vocabSize()
              + " -> "
              + newVocab
              + " needs embed_tokens and lm_head in modules_to_save (trained in full)");
    }
    INDArray embed = null;
    INDArray head = null;
    if (lc.trainEmbedTokens()) {
      embed =
          newVocab == c.vocabSize()
              ? base.embedTokens().castTo(dt).dup('c')
              : resized(base.embedTokens(), newVocab, rowInit, lc.seed(), 0, dt);
    }
    if (lc.trainLmHead()) {
      if (newVocab == c.vocabSize()) {
        head = base.lmHead().castTo(dt).dup('c');
      } else if (c.tieWordEmbeddings()) {
        head = embed.dup('c');
      } else {
        head = resized(base.lmHead(), newVocab, rowInit, lc.seed(), 1, dt);
      }
    }
    return new LoraAdapter(lc, c, a, b, embed, head);
  }

  /**
   * A fresh AdaLoRA adapter as PEFT initialises one: E = 0 (so the adapted model starts equal to
   * the base), A and B ~ N(0, 0.02), drawn keyed by (seed, layer, module) as {@link #init}'s A;
   * {@code lc.rank()} is init_r.
   */
  public static LoraAdapter initAdaLora(
      LoraConfig lc, AdaLoraConfig ac, LlamaWeights base, int newVocab, VocabResize.Init rowInit) {
    if (lc.rank() != ac.initR()) {
      throw new IllegalArgumentException(
          "AdaLoRA adapters have rank init_r " + ac.initR() + ", not " + lc.rank());
    }
    LoraAdapter plain = init(lc, base, newVocab, rowInit);
    DataType dt = base.dataType();
    int layers = plain.loraA.length;
    INDArray[][] e = new INDArray[layers][LoraModule.values().length];
    for (int l = 0; l < layers; l++) {
      for (LoraModule m : lc.targets()) {
        int mi = m.ordinal();
        normal(plain.loraA[l][mi], CounterRng.key(lc.seed(), 0xADA0A, l, mi));
        normal(plain.loraB[l][mi], CounterRng.key(lc.seed(), 0xADA0B, l, mi));
        e[l][mi] = Nd4j.zeros(dt, lc.rank(), 1);
      }
    }
    LoraAdapter ad =
        new LoraAdapter(
            lc, plain.model, plain.loraA, plain.loraB, plain.embedTokens, plain.lmHead, ac, e);
    ad.syncSvd();
    return ad;
  }

  /** Fills {@code a} with N(0, 0.02) draws (Box-Muller on two keyed uniforms per value). */
  private static void normal(INDArray a, long key) {
    Buf buf = Buf.of(a);
    for (int i = 0; i < buf.length(); i++) {
      double u1 = 1.0 - CounterRng.uniform(key, 2L * i); // (0, 1]: log is finite
      double u2 = CounterRng.uniform(key, 2L * i + 1);
      buf.set(i, 0.02 * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
    }
  }

  /** An AdaLoRA adapter from given tensors (A, B, E per target; the allocator's tests). */
  public static LoraAdapter ofAdaLora(
      LoraConfig lc,
      AdaLoraConfig ac,
      LlamaConfig c,
      INDArray[][] loraA,
      INDArray[][] loraB,
      INDArray[][] loraE,
      INDArray embedTokens,
      INDArray lmHead) {
    LoraAdapter ad = new LoraAdapter(lc, c, loraA, loraB, embedTokens, lmHead, ac, loraE);
    ad.syncSvd();
    return ad;
  }

  /** The matrix the LoRA branch multiplies dropout(x) by: A, or A ⊙ E for AdaLoRA. */
  public INDArray forwardA(int layer, LoraModule m) {
    return svd == null ? loraA[layer][m.ordinal()] : loraAE[layer][m.ordinal()];
  }

  /**
   * AdaLoRA: recomputes A ⊙ E (E broadcast along rows) from the current A and E; call after either
   * changed (each optimizer step, a mask, a load). No-op for LoRA.
   */
  public void syncSvd() {
    if (svd == null) {
      return;
    }
    for (int l = 0; l < loraA.length; l++) {
      for (int m = 0; m < loraA[l].length; m++) {
        if (loraA[l][m] != null) {
          // plain loops over the native buffers: (r, in) is small, and an ND4J op per module
          // costs a thread-pool wake-up that dominates on a loaded host
          java.nio.FloatBuffer a = NamedParam.flat(loraA[l][m]);
          java.nio.FloatBuffer e = NamedParam.flat(loraE[l][m]);
          java.nio.FloatBuffer ae = NamedParam.flat(loraAE[l][m]);
          int r = e.limit();
          int in = a.limit() / r;
          for (int i = 0; i < r; i++) {
            float ei = e.get(i);
            for (int j = i * in; j < (i + 1) * in; j++) {
              ae.put(j, a.get(j) * ei);
            }
          }
        }
      }
    }
  }

  /**
   * AdaLoRA backward of the product P = A ⊙ E given dP ({@link #dLoraAE}, this micro-batch's): dA
   * += dP ⊙ E, dE += rowsum(dP ⊙ A).
   */
  public void svdBackward(int layer, LoraModule m) {
    int mi = m.ordinal();
    java.nio.FloatBuffer dP = NamedParam.flat(dLoraAE[layer][mi]);
    java.nio.FloatBuffer a = NamedParam.flat(loraA[layer][mi]);
    java.nio.FloatBuffer e = NamedParam.flat(loraE[layer][mi]);
    java.nio.FloatBuffer dA = NamedParam.flat(dLoraA[layer][mi]);
    java.nio.FloatBuffer dE = NamedParam.flat(dLoraE[layer][mi]);
    int r = e.limit();
    int in = a.limit() / r;
    for (int i = 0; i < r; i++) {
      float ei = e.get(i);
      double s = 0;
      for (int j = i * in; j < (i + 1) * in; j++) {
        float p = dP.get(j);
        dA.put(j, dA.get(j) + p * ei);
        s += (double) p * a.get(j);
      }
      dE.put(i, (float) (dE.get(i) + s));
    }
  }

  /** An adapter from given tensors (e.g. read from adapter_model.safetensors). */
  public static LoraAdapter of(
      LoraConfig lc,
      LlamaConfig c,
      INDArray[][] loraA,
      INDArray[][] loraB,
      INDArray embedTokens,
      INDArray lmHead) {
    return new LoraAdapter(lc, c, loraA, loraB, embedTokens, lmHead);
  }

  /**
   * An adapter from tensors under PEFT keys (adapter_model.safetensors); shapes are checked against
   * the model config. Full embed_tokens / lm_head may have more rows than the base (vocabulary
   * resize): the adapter's row count is the effective vocabulary.
   */
  public static LoraAdapter fromTensors(
      LoraConfig lc, LlamaConfig c, LlamaWeights.TensorSource src, DataType dt)
      throws java.io.IOException {
    int nm = LoraModule.values().length;
    INDArray[][] a = new INDArray[c.numLayers()][nm];
    INDArray[][] b = new INDArray[c.numLayers()][nm];
    for (int l = 0; l < c.numLayers(); l++) {
      for (LoraModule m : lc.targets()) {
        long[] w = LlamaWeights.linearShape(c, m);
        a[l][m.ordinal()] = read(src, peftKey(l, m, "A"), new long[] {lc.rank(), w[1]}, dt);
        b[l][m.ordinal()] = read(src, peftKey(l, m, "B"), new long[] {w[0], lc.rank()}, dt);
      }
    }
    INDArray embed = lc.trainEmbedTokens() ? readFull(src, EMBED_KEY, c, dt) : null;
    INDArray head = lc.trainLmHead() ? readFull(src, LM_HEAD_KEY, c, dt) : null;
    if (embed != null && head != null && embed.size(0) != head.size(0)) {
      throw new java.io.IOException(
          "adapter embed_tokens has " + embed.size(0) + " rows but lm_head " + head.size(0));
    }
    return new LoraAdapter(lc, c, a, b, embed, head);
  }

  private static INDArray read(LlamaWeights.TensorSource src, String key, long[] shape, DataType dt)
      throws java.io.IOException {
    if (!src.contains(key)) {
      throw new java.io.IOException("adapter has no tensor '" + key + "'");
    }
    long[] actual = src.shape(key);
    if (!java.util.Arrays.equals(actual, shape)) {
      throw new java.io.IOException(
          "adapter tensor '"
              + key
              + "' has shape "
              + java.util.Arrays.toString(actual)
              + ", expected "
              + java.util.Arrays.toString(shape));
    }
    return LlamaWeights.fromFloats(src.readFloats(key), shape, dt);
  }

  private static INDArray readFull(
      LlamaWeights.TensorSource src, String key, LlamaConfig c, DataType dt)
      throws java.io.IOException {
    if (!src.contains(key)) {
      throw new java.io.IOException("adapter has no tensor '" + key + "' (modules_to_save)");
    }
    long[] shape = src.shape(key);
    if (shape.length != 2 || shape[1] != c.hiddenSize() || shape[0] < c.vocabSize()) {
      throw new java.io.IOException(
          "adapter tensor '"
              + key
              + "' has shape "
              + java.util.Arrays.toString(shape)
              + ", expected [vocab >= "
              + c.vocabSize()
              + ", "
              + c.hiddenSize()
              + "]");
    }
    return LlamaWeights.fromFloats(src.readFloats(key), shape, dt);
  }

  /** Vocabulary size the adapted model produces logits for (grows with a resize). */
  public int vocabSize() {
    if (lmHead != null) {
      return (int) lmHead.size(0);
    }
    return embedTokens != null ? (int) embedTokens.size(0) : model.vocabSize();
  }

  /**
   * The factor on the LoRA branch: alpha / r, or AdaLoRA's lora_alpha / (ranknum + 1e-5) with
   * ranknum = init_r (PEFT keeps ranknum at the initial rank while it masks).
   */
  public double scaling() {
    return svd == null ? config.scaling() : config.alpha() / ((float) config.rank() + 1e-5f);
  }

  public boolean targets(LoraModule m) {
    return config.targets().contains(m);
  }

  /** scaling * B A (AdaLoRA: B (A ⊙ E)), the (out, in) update a merge adds to W. */
  public INDArray deltaWeight(int layer, LoraModule m) {
    return loraB[layer][m.ordinal()].mmul(forwardA(layer, m)).muli(scaling());
  }

  /** PEFT's key of an AdaLoRA tensor (no {@code .weight}: ParameterDict entries), e.g. lora_E. */
  public static String adaLoraKey(int layer, LoraModule m, String name) {
    return "base_model.model.model.layers." + layer + "." + m.path() + "." + name;
  }

  /**
   * PEFT key of a LoRA tensor: base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight.
   */
  public static String peftKey(int layer, LoraModule m, String ab) {
    return "base_model.model.model.layers." + layer + "." + m.path() + ".lora_" + ab + ".weight";
  }

  public static final String EMBED_KEY = "base_model.model.model.embed_tokens.weight";
  public static final String LM_HEAD_KEY = "base_model.model.lm_head.weight";

  /**
   * Every trainable tensor with its gradient, in a fixed order (layer, module, A then B, then
   * embed_tokens, lm_head) that the optimizer and ZeRO partitioning can rely on.
   */
  public List<NamedParam> trainable() {
    List<NamedParam> out = new ArrayList<>();
    for (int l = 0; l < loraA.length; l++) {
      for (LoraModule m : LoraModule.values()) {
        if (loraA[l][m.ordinal()] != null && svd != null) {
          int mi = m.ordinal();
          out.add(new NamedParam(adaLoraKey(l, m, "lora_A"), loraA[l][mi], dLoraA[l][mi]));
          out.add(new NamedParam(adaLoraKey(l, m, "lora_B"), loraB[l][mi], dLoraB[l][mi]));
          out.add(new NamedParam(adaLoraKey(l, m, "lora_E"), loraE[l][mi], dLoraE[l][mi]));
        } else if (loraA[l][m.ordinal()] != null) {
          out.add(
              new NamedParam(peftKey(l, m, "A"), loraA[l][m.ordinal()], dLoraA[l][m.ordinal()]));
          out.add(
              new NamedParam(peftKey(l, m, "B"), loraB[l][m.ordinal()], dLoraB[l][m.ordinal()]));
        }
      }
    }
    if (embedTokens != null) {
      out.add(new NamedParam(EMBED_KEY, embedTokens, dEmbedTokens));
    }
    if (lmHead != null) {
      out.add(new NamedParam(LM_HEAD_KEY, lmHead, dLmHead));
    }
    out.addAll(heads);
    return out;
  }

  private final List<NamedParam> heads = new ArrayList<>();

  /**
   * Adds a trainable head on the model's final hidden state (a reward model's or PPO's value head,
   * TRL's {@code v_head.summary.*}): trained, checkpointed and resumed with the adapter's other
   * tensors, but not part of the PEFT adapter file (its owner saves it, e.g. as {@code
   * value_head.safetensors}). Call before training starts. Returns the gradient buffer.
   */
  public INDArray addHead(String name, INDArray value) {
    for (NamedParam p : trainable()) {
      if (p.name().equals(name)) {
        throw new IllegalArgumentException("the adapter already has a trainable " + name);
      }
    }
    INDArray grad = Nd4j.zeros(value.dataType(), value.shape());
    heads.add(new NamedParam(name, value, grad));
    return grad;
  }

  /** The heads {@link #addHead} added, in order. */
  public List<NamedParam> heads() {
    return List.copyOf(heads);
  }

  /** Number of trainable scalars. */
  public long numTrainable() {
    long n = 0;
    for (NamedParam p : trainable()) {
      n += p.value().length();
    }
    return n;
  }

  /** Sets every gradient to zero (gradients accumulate across micro-batches). */
  public void zeroGrad() {
    for (NamedParam p : trainable()) {
      p.grad().assign(0);
    }
  }

  private static INDArray[][] zerosLike(INDArray[][] src) {
    INDArray[][] out = new INDArray[src.length][];
    for (int l = 0; l < src.length; l++) {
      out[l] = new INDArray[src[l].length];
      for (int m = 0; m < src[l].length; m++) {
        if (src[l][m] != null) {
          out[l][m] = Nd4j.zeros(src[l][m].dataType(), src[l][m].shape());
        }
      }
    }
    return out;
  }
}
