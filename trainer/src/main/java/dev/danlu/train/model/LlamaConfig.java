package dev.danlu.train.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The architecture of a LLaMA model, read from a Hugging Face {@code config.json}. Unknown keys are
 * ignored on purpose: HF configs carry dozens of keys (torch_dtype, architectures, ...) that do not
 * change the math. Missing required keys are errors naming the file and key.
 *
 * @param ropeScaling null when the config has no (or a null) {@code rope_scaling}
 * @param ntk the reference's NTK scaling (not a config.json key: a loading option, see {@link
 *     #withNtk}); null = none
 */
public record LlamaConfig(
    int hiddenSize,
    int intermediateSize,
    int numLayers,
    int numHeads,
    int numKvHeads,
    int vocabSize,
    double rmsNormEps,
    double ropeTheta,
    RopeScaling ropeScaling,
    boolean tieWordEmbeddings,
    int maxPositionEmbeddings,
    NtkAlpha ntk) {

  /** A config without NTK scaling (what config.json describes). */
  public LlamaConfig(
      int hiddenSize,
      int intermediateSize,
      int numLayers,
      int numHeads,
      int numKvHeads,
      int vocabSize,
      double rmsNormEps,
      double ropeTheta,
      RopeScaling ropeScaling,
      boolean tieWordEmbeddings,
      int maxPositionEmbeddings) {
    this(
        hiddenSize,
        intermediateSize,
        numLayers,
        numHeads,
        numKvHeads,
        vocabSize,
        rmsNormEps,
        ropeTheta,
        ropeScaling,
        tieWordEmbeddings,
        maxPositionEmbeddings,
        null);
  }

  /** HF transformers 4.35 rope_scaling: {@code {"type": "linear"|"dynamic", "factor": f}}. */
  public record RopeScaling(Type type, double factor) {
    /** Linear position interpolation or dynamic NTK-aware base scaling. */
    public enum Type {
      LINEAR,
      DYNAMIC
    }
  }

  public LlamaConfig {
    if (hiddenSize % numHeads != 0) {
      throw new IllegalArgumentException(
          "hidden_size " + hiddenSize + " is not a multiple of num_attention_heads " + numHeads);
    }
    if (numHeads % numKvHeads != 0) {
      throw new IllegalArgumentException(
          "num_attention_heads "
              + numHeads
              + " is not a multiple of num_key_value_heads "
              + numKvHeads);
    }
    if ((hiddenSize / numHeads) % 2 != 0) {
      throw new IllegalArgumentException("head dim " + hiddenSize / numHeads + " must be even");
    }
    if (ntk != null
        && ropeScaling != null
        && ropeScaling.type() == RopeScaling.Type.DYNAMIC
        && !ntk.isNone()) {
      throw new IllegalArgumentException(
          "ntk_alpha "
              + ntk
              + " cannot be combined with rope_scaling type dynamic (both rescale the rotary"
              + " base); use one of them");
    }
  }

  /**
   * The same config with the reference's NTK scaling (Chinese-LLaMA-Alpaca-2
   * scripts/attn_and_long_ctx_patches.py); null or {@link NtkAlpha#NONE} removes it. This is the
   * hook a command uses after loading a model (see {@link LlamaWeights#withNtk}).
   */
  public LlamaConfig withNtk(NtkAlpha n) {
    return new LlamaConfig(
        hiddenSize,
        intermediateSize,
        numLayers,
        numHeads,
        numKvHeads,
        vocabSize,
        rmsNormEps,
        ropeTheta,
        ropeScaling,
        tieWordEmbeddings,
        maxPositionEmbeddings,
        n == null || n.isNone() ? null : n);
  }

  /**
   * The same config with another rope_scaling and max_position_embeddings (position interpolation:
   * the reference's 16K models are LLaMA-2 with {@code {type: linear, factor: 4}} and
   * max_position_embeddings 16384).
   */
  public LlamaConfig withRopeScaling(RopeScaling rs, int maxPos) {
    return new LlamaConfig(
        hiddenSize,
        intermediateSize,
        numLayers,
        numHeads,
        numKvHeads,
        vocabSize,
        rmsNormEps,
        ropeTheta,
        rs,
        tieWordEmbeddings,
        maxPos,
        ntk);
  }

  /** The linear position-interpolation factor (positions are divided by it); 1 without PI. */
  public double piFactor() {
    return ropeScaling != null && ropeScaling.type() == RopeScaling.Type.LINEAR
        ? ropeScaling.factor()
        : 1.0;
  }

  /** Whether the rotary tables depend on the sequence length (dynamic NTK or NTK alpha auto). */
  public boolean ropeDependsOnLength() {
    return (ropeScaling != null && ropeScaling.type() == RopeScaling.Type.DYNAMIC)
        || (ntk != null && ntk.auto());
  }

  public int headDim() {
    return hiddenSize / numHeads;
  }

  public int kvDim() {
    return numKvHeads * headDim();
  }

  /** Reads {@code dir/config.json} (or the file itself when {@code path} is a file). */
  public static LlamaConfig load(Path path) throws IOException {
    Path file = Files.isDirectory(path) ? path.resolve("config.json") : path;
    if (!Files.isRegularFile(file)) {
      throw new IOException(file + ": no such file (expected a Hugging Face config.json)");
    }
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(file.toFile());
    } catch (IOException e) {
      throw new IOException(file + ": not valid JSON: " + e.getMessage(), e);
    }
    return parse(root, file.toString());
  }

  /** Parses a config.json tree; {@code source} names the file in error messages. */
  public static LlamaConfig parse(JsonNode root, String source) {
    if (root == null || !root.isObject()) {
      throw new IllegalArgumentException(source + ": expected a JSON object");
    }
    int heads = requiredInt(root, "num_attention_heads", source);
    JsonNode kv = root.get("num_key_value_heads");
    int kvHeads = kv == null || kv.isNull() ? heads : asInt(kv, "num_key_value_heads", source);
    JsonNode theta = root.get("rope_theta");
    return new LlamaConfig(
        requiredInt(root, "hidden_size", source),
        requiredInt(root, "intermediate_size", source),
        requiredInt(root, "num_hidden_layers", source),
        heads,
        kvHeads,
        requiredInt(root, "vocab_size", source),
        requiredNumber(root, "rms_norm_eps", source),
        theta == null || theta.isNull() ? 10000.0 : asNumber(theta, "rope_theta", source),
        ropeScaling(root.get("rope_scaling"), source),
        root.path("tie_word_embeddings").asBoolean(false),
        requiredInt(root, "max_position_embeddings", source));
  }

  /** The same config with another vocabulary size (after a vocabulary resize). */
  public LlamaConfig withVocabSize(int newVocab) {
    return new LlamaConfig(
        hiddenSize,
        intermediateSize,
        numLayers,
        numHeads,
        numKvHeads,
        newVocab,
        rmsNormEps,
        ropeTheta,
        ropeScaling,
        tieWordEmbeddings,
        maxPositionEmbeddings,
        ntk);
  }

  private static RopeScaling ropeScaling(JsonNode node, String source) {
    if (node == null || node.isNull()) {
      return null;
    }
    JsonNode type = node.get("type");
    if (type == null) {
      type = node.get("rope_type"); // newer transformers spell it rope_type
    }
    if (type == null || !type.isTextual()) {
      throw new IllegalArgumentException(source + ": rope_scaling.type is missing");
    }
    RopeScaling.Type t =
        switch (type.asText()) {
          case "linear" -> RopeScaling.Type.LINEAR;
          case "dynamic" -> RopeScaling.Type.DYNAMIC;
          default ->
              throw new IllegalArgumentException(
                  source
                      + ": rope_scaling.type '"
                      + type.asText()
                      + "' is not supported (use linear or dynamic)");
        };
    double factor = requiredNumber(node, "factor", source + " rope_scaling");
    if (!(factor >= 1.0)) {
      throw new IllegalArgumentException(source + ": rope_scaling.factor must be >= 1");
    }
    return new RopeScaling(t, factor);
  }

  private static int requiredInt(JsonNode root, String key, String source) {
    JsonNode n = root.get(key);
    if (n == null || n.isNull()) {
      throw new IllegalArgumentException(source + ": required key '" + key + "' is missing");
    }
    return asInt(n, key, source);
  }

  private static int asInt(JsonNode n, String key, String source) {
    if (!n.canConvertToInt() || !n.isIntegralNumber() || n.asInt() <= 0) {
      throw new IllegalArgumentException(
          source + ": key '" + key + "' must be a positive integer, got " + n);
    }
    return n.asInt();
  }

  private static double requiredNumber(JsonNode root, String key, String source) {
    JsonNode n = root.get(key);
    if (n == null || n.isNull()) {
      throw new IllegalArgumentException(source + ": required key '" + key + "' is missing");
    }
    return asNumber(n, key, source);
  }

  private static double asNumber(JsonNode n, String key, String source) {
    if (!n.isNumber()) {
      throw new IllegalArgumentException(source + ": key '" + key + "' must be a number, got " + n);
    }
    return n.asDouble();
  }
}
