package dev.danlu.train.model;

import dev.danlu.train.lora.LoraModule;
import dev.danlu.train.tensor.HalfArrays;
import dev.danlu.train.tensor.Kernels;
import java.io.IOException;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The frozen base weights of a LlamaForCausalLM, in Hugging Face's names and layouts (linear
 * weights are [out, in]; rotary q/k rows already permuted for rotate_half).
 *
 * <p>Storage precision ({@code torch_dtype}): FLOAT or DOUBLE arrays are used as they are. With
 * HALF or BFLOAT16 storage the seven projections, embed_tokens and lm_head are held in 16 bits and
 * the RMSNorm weights in float32 holding the rounded values (they are tiny, and the norm kernels
 * read them directly), so the model computes exactly what torch computes in float32 from a model
 * loaded with that dtype. The math always reads float32: {@link #linear} and {@link #lmHeadF32}
 * widen a half-precision weight into a one-layer scratch ({@link Fp32Scratch}), and {@link #embed}
 * gathers rows without widening the whole table.
 */
public final class LlamaWeights {
  private final LlamaConfig config;
  private final INDArray embedTokens; // (vocab, dim)
  private final Layer[] layers; // one per decoder layer
  private final INDArray norm; // (dim) final RMSNorm
  private final INDArray lmHead; // (vocab, dim); the same array as embedTokens when tied
  private final Fp32Scratch scratch;

  /**
   * @param embedTokens (vocab, dim)
   * @param layers one per decoder layer
   * @param norm (dim) final RMSNorm
   * @param lmHead (vocab, dim); the same array as embedTokens when the embeddings are tied
   */
  public LlamaWeights(
      LlamaConfig config, INDArray embedTokens, Layer[] layers, INDArray norm, INDArray lmHead) {
    this.config = config;
    this.embedTokens = embedTokens;
    this.layers = layers;
    this.norm = norm;
    this.lmHead = lmHead;
    this.scratch = new Fp32Scratch(this);
  }

  public LlamaConfig config() {
    return config;
  }

  /**
   * These weights (the same arrays, no copy) under the reference's NTK scaling {@code ntk} (null or
   * NONE: none) — the hook generate / eval / serve call after loading a model with {@code
   * --ntk-alpha}. The returned instance has its own float32 widening scratch; use it instead of
   * this one.
   */
  public LlamaWeights withNtk(NtkAlpha ntk) {
    return new LlamaWeights(config.withNtk(ntk), embedTokens, layers, norm, lmHead);
  }

  /**
   * These weights (no copy) under a config that differs from theirs only in its rotary settings
   * (rope_scaling, max_position_embeddings, NTK); anything else is an error.
   */
  public LlamaWeights withRope(LlamaConfig c) {
    if (!c.withRopeScaling(config.ropeScaling(), config.maxPositionEmbeddings())
        .withNtk(config.ntk())
        .equals(config)) {
      throw new IllegalArgumentException(
          "withRope: " + c + " differs from the weights' " + config + " beyond rotary settings");
    }
    return new LlamaWeights(c, embedTokens, layers, norm, lmHead);
  }

  /** The stored (vocab, dim) embedding table, in the storage dtype. */
  public INDArray embedTokens() {
    return embedTokens;
  }

  /** The decoder layers' stored weights. */
  public Layer[] layers() {
    return layers;
  }

  /** (dim) final RMSNorm weight, float32 (or float64). */
  public INDArray norm() {
    return norm;
  }

  /** The stored (vocab, dim) LM head, in the storage dtype. */
  public INDArray lmHead() {
    return lmHead;
  }

  /**
   * One decoder layer.
   *
   * @param inputNorm (dim)
   * @param wq (dim, dim)
   * @param wk (kvDim, dim)
   * @param wv (kvDim, dim)
   * @param wo (dim, dim)
   * @param postAttentionNorm (dim)
   * @param wGate (ffn, dim)
   * @param wUp (ffn, dim)
   * @param wDown (dim, ffn)
   */
  public record Layer(
      INDArray inputNorm,
      INDArray wq,
      INDArray wk,
      INDArray wv,
      INDArray wo,
      INDArray postAttentionNorm,
      INDArray wGate,
      INDArray wUp,
      INDArray wDown) {

    /** The [out, in] weight of a projection. */
    public INDArray linear(LoraModule m) {
      return switch (m) {
        case Q -> wq;
        case K -> wk;
        case V -> wv;
        case O -> wo;
        case GATE -> wGate;
        case UP -> wUp;
        case DOWN -> wDown;
      };
    }
  }

  /** Where weights come from: a Hugging Face checkpoint, or anything with the same names. */
  public interface TensorSource {
    boolean contains(String name);

    long[] shape(String name) throws IOException;

    float[] readFloats(String name) throws IOException;

    /**
     * The tensor as a c-order array of 16-bit dtype {@code t}. The default rounds {@link
     * #readFloats} to nearest-even (torch's {@code .half()} / {@code .bfloat16()}); a source whose
     * file already holds {@code t} overrides this to copy the bits without a float32 round trip.
     */
    default INDArray readHalf(String name, long[] shape, DataType t) throws IOException {
      return HalfArrays.fromFloats(readFloats(name), shape, t);
    }
  }

  /**
   * The dtype the model computes in: float32 for half-precision storage, else the storage dtype
   * (float64 in the finite-difference tests). Activations and adapters use this dtype.
   */
  public DataType dataType() {
    DataType t = layers.length > 0 ? layers[0].wq().dataType() : embedTokens.dataType();
    return HalfArrays.isHalf(t) || HalfArrays.isHalf(embedTokens.dataType()) ? DataType.FLOAT : t;
  }

  /** The dtype the projections are stored in (FLOAT, DOUBLE, HALF or BFLOAT16). */
  public DataType storageType() {
    return layers.length > 0 ? layers[0].wq().dataType() : embedTokens.dataType();
  }

  /**
   * The weight of projection m in layer l in the compute dtype: the stored array itself, or for
   * half-precision storage its float32 copy in the shared one-layer scratch, valid until weights of
   * another layer (or the LM head) are asked for. Every gemm against a frozen weight goes through
   * here (and {@link #lmHeadF32}).
   */
  public INDArray linear(int l, LoraModule m) {
    return scratch.linear(l, m);
  }

  /** lm_head in the compute dtype (scratch-backed for half storage, as {@link #linear}). */
  public INDArray lmHeadF32() {
    return scratch.lmHead();
  }

  /** out[n, :] = embed_tokens[ids[n], :] in the compute dtype, reading only the rows used. */
  public void embed(int[] ids, INDArray out) {
    if (HalfArrays.isHalf(embedTokens.dataType())) {
      HalfArrays.gatherRows(ids, embedTokens, out);
    } else {
      Kernels.embeddingForward(ids, embedTokens, out);
    }
  }

  /** Bytes of stored weights (a tied head counted once), not counting the float32 scratch. */
  public long storageBytes() {
    long n = HalfArrays.bytes(embedTokens) + HalfArrays.bytes(norm);
    if (lmHead != embedTokens) {
      n += HalfArrays.bytes(lmHead);
    }
    for (Layer l : layers) {
      n += HalfArrays.bytes(l.inputNorm()) + HalfArrays.bytes(l.postAttentionNorm());
      for (LoraModule m : LoraModule.values()) {
        n += HalfArrays.bytes(l.linear(m));
      }
    }
    return n;
  }

  /** Bytes of the float32 scratch allocated so far (one layer once a half weight was used). */
  public long scratchBytes() {
    return scratch.bytes();
  }

  /** Weights widened into the scratch so far. */
  long upcasts() {
    return scratch.upcasts();
  }

  /**
   * These weights stored in {@code t}: FLOAT/DOUBLE converts every array; HALF/BFLOAT16 rounds
   * projections, embed_tokens and lm_head to 16 bits (nearest-even) and the norms to the values of
   * {@code t} kept in float32. Ties survive. For tests and for callers that build weights in float.
   */
  public LlamaWeights withStorage(DataType t) {
    Layer[] out = new Layer[layers.length];
    for (int i = 0; i < layers.length; i++) {
      Layer l = layers[i];
      out[i] =
          new Layer(
              normTo(l.inputNorm(), t),
              to(l.wq(), t),
              to(l.wk(), t),
              to(l.wv(), t),
              to(l.wo(), t),
              normTo(l.postAttentionNorm(), t),
              to(l.wGate(), t),
              to(l.wUp(), t),
              to(l.wDown(), t));
    }
    INDArray embed = to(embedTokens, t);
    INDArray head = lmHead == embedTokens ? embed : to(lmHead, t);
    return new LlamaWeights(config, embed, out, normTo(norm, t), head);
  }

  private static INDArray to(INDArray a, DataType t) {
    if (a.dataType() == t) {
      return a;
    }
    return fromFloats(floats(a), a.shape(), t);
  }

  private static INDArray normTo(INDArray a, DataType t) {
    return HalfArrays.isHalf(t)
        ? fromFloats(HalfArrays.round(floats(a), t), a.shape(), DataType.FLOAT)
        : to(a, t);
  }

  private static float[] floats(INDArray a) {
    return a.castTo(DataType.FLOAT).dup('c').reshape(-1).toFloatVector();
  }

  /** [out, in] of a projection. */
  public static long[] linearShape(LlamaConfig c, LoraModule m) {
    return switch (m) {
      case Q, O -> new long[] {c.hiddenSize(), c.hiddenSize()};
      case K, V -> new long[] {c.kvDim(), c.hiddenSize()};
      case GATE, UP -> new long[] {c.intermediateSize(), c.hiddenSize()};
      case DOWN -> new long[] {c.hiddenSize(), c.intermediateSize()};
    };
  }

  /**
   * Reads every tensor by its HF name, checking shapes against the config, into storage dtype
   * {@code dtype} (FLOAT, DOUBLE, HALF or BFLOAT16; see the class comment for what half storage
   * keeps in float32).
   */
  public static LlamaWeights load(LlamaConfig c, TensorSource src, DataType dtype)
      throws IOException {
    long dim = c.hiddenSize();
    INDArray embed = read(src, "model.embed_tokens.weight", new long[] {c.vocabSize(), dim}, dtype);
    Layer[] layers = new Layer[c.numLayers()];
    for (int i = 0; i < layers.length; i++) {
      String p = "model.layers." + i + ".";
      INDArray[] lin = new INDArray[LoraModule.values().length];
      for (LoraModule m : LoraModule.values()) {
        lin[m.ordinal()] = read(src, p + m.path() + ".weight", linearShape(c, m), dtype);
      }
      layers[i] =
          new Layer(
              readNorm(src, p + "input_layernorm.weight", dim, dtype),
              lin[0],
              lin[1],
              lin[2],
              lin[3],
              readNorm(src, p + "post_attention_layernorm.weight", dim, dtype),
              lin[4],
              lin[5],
              lin[6]);
    }
    INDArray norm = readNorm(src, "model.norm.weight", dim, dtype);
    INDArray head;
    if (c.tieWordEmbeddings()) {
      head = embed; // a stored lm_head.weight (stories260K has one) equals embed_tokens when tied
    } else {
      if (!src.contains("lm_head.weight")) {
        throw new IOException(
            "checkpoint has no lm_head.weight and config.json says tie_word_embeddings=false");
      }
      head = read(src, "lm_head.weight", new long[] {c.vocabSize(), dim}, dtype);
    }
    return new LlamaWeights(c, embed, layers, norm, head);
  }

  private static INDArray read(TensorSource src, String name, long[] shape, DataType dtype)
      throws IOException {
    if (!src.contains(name)) {
      throw new IOException("checkpoint has no tensor '" + name + "'");
    }
    long[] actual = src.shape(name);
    if (!Arrays.equals(actual, shape)) {
      throw new IOException(
          "tensor '"
              + name
              + "' has shape "
              + Arrays.toString(actual)
              + " but config.json implies "
              + Arrays.toString(shape));
    }
    if (HalfArrays.isHalf(dtype)) {
      return src.readHalf(name, shape, dtype);
    }
    return fromFloats(src.readFloats(name), shape, dtype);
  }

  /** A norm weight: float32 holding the values of {@code dtype} when that is a 16-bit type. */
  private static INDArray readNorm(TensorSource src, String name, long dim, DataType dtype)
      throws IOException {
    INDArray a = read(src, name, new long[] {dim}, DataType.FLOAT);
    return HalfArrays.isHalf(dtype)
        ? fromFloats(HalfArrays.round(a.toFloatVector(), dtype), a.shape(), DataType.FLOAT)
        : a.castTo(dtype);
  }

  /** A c-order array of {@code dtype} holding {@code data} (16-bit types: nearest-even). */
  public static INDArray fromFloats(float[] data, long[] shape, DataType dtype) {
    return HalfArrays.fromFloats(data, shape, dtype);
  }

  /**
   * Random weights for tests and benchmarks: N(0, 0.02) matrices (HF's initializer_range) and norm
   * weights 1 + N(0, 0.1) so that the norms are not the identity.
   */
  public static LlamaWeights random(LlamaConfig c, long seed, DataType dtype) {
    if (HalfArrays.isHalf(dtype)) {
      return random(c, seed, DataType.FLOAT).withStorage(dtype);
    }
    SplittableRandom rnd = new SplittableRandom(seed);
    INDArray embed = randn(rnd, new long[] {c.vocabSize(), c.hiddenSize()}, 0, 0.02, dtype);
    Layer[] layers = new Layer[c.numLayers()];
    for (int i = 0; i < layers.length; i++) {
      INDArray[] lin = new INDArray[LoraModule.values().length];
      for (LoraModule m : LoraModule.values()) {
        lin[m.ordinal()] = randn(rnd, linearShape(c, m), 0, 0.02, dtype);
      }
      layers[i] =
          new Layer(
              randn(rnd, new long[] {c.hiddenSize()}, 1, 0.1, dtype),
              lin[0],
              lin[1],
              lin[2],
              lin[3],
              randn(rnd, new long[] {c.hiddenSize()}, 1, 0.1, dtype),
              lin[4],
              lin[5],
              lin[6]);
    }
    INDArray norm = randn(rnd, new long[] {c.hiddenSize()}, 1, 0.1, dtype);
    INDArray head =
        c.tieWordEmbeddings()
            ? embed
            : randn(rnd, new long[] {c.vocabSize(), c.hiddenSize()}, 0, 0.02, dtype);
    return new LlamaWeights(c, embed, layers, norm, head);
  }

  private static INDArray randn(
      SplittableRandom rnd, long[] shape, double mean, double std, DataType dtype) {
    long n = 1;
    for (long s : shape) {
      n *= s;
    }
    float[] v = new float[Math.toIntExact(n)];
    for (int i = 0; i < v.length; i++) {
      // Box-Muller; one normal per pair of uniforms keeps the stream simple and reproducible
      double u1 = 1.0 - rnd.nextDouble();
      double u2 = rnd.nextDouble();
      v[i] = (float) (mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
    }
    return fromFloats(v, shape, dtype);
  }
}
