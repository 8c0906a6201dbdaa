package dev.danlu.train.model;

import dev.danlu.train.lora.LoraModule;
import java.io.IOException;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The frozen base weights of a LlamaForCausalLM, in Hugging Face's names and layouts (linear
 * weights are [out, in]; rotary q/k rows already permuted for rotate_half).
 *
 * @param embedTokens (vocab, dim)
 * @param layers one per decoder layer
 * @param norm (dim) final RMSNorm
 * @param lmHead (vocab, dim); the same array as embedTokens when the embeddings are tied
 */
public record LlamaWeights(
    LlamaConfig config, INDArray embedTokens, Layer[] layers, INDArray norm, INDArray lmHead) {

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
  }

  public DataType dataType() {
    return embedTokens.dataType();
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

  /** Reads every tensor by its HF name, checking shapes against the config. */
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
              read(src, p + "input_layernorm.weight", new long[] {dim}, dtype),
              lin[0],
              lin[1],
              lin[2],
              lin[3],
              read(src, p + "post_attention_layernorm.weight", new long[] {dim}, dtype),
              lin[4],
              lin[5],
              lin[6]);
    }
    INDArray norm = read(src, "model.norm.weight", new long[] {dim}, dtype);
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
    return fromFloats(src.readFloats(name), shape, dtype);
  }

  /** A c-order array of {@code dtype} holding {@code data}. */
  public static INDArray fromFloats(float[] data, long[] shape, DataType dtype) {
    INDArray a = Nd4j.create(data, shape, DataType.FLOAT);
    return dtype == DataType.FLOAT ? a : a.castTo(dtype).dup('c');
  }

  /**
   * Random weights for tests and benchmarks: N(0, 0.02) matrices (HF's initializer_range) and norm
   * weights 1 + N(0, 0.1) so that the norms are not the identity.
   */
  public static LlamaWeights random(LlamaConfig c, long seed, DataType dtype) {
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
