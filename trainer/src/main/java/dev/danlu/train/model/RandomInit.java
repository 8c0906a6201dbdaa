package dev.danlu.train.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.danlu.train.checkpoint.DType;
import dev.danlu.train.checkpoint.HfCheckpoint;
import dev.danlu.train.checkpoint.SafeTensorsWriter;
import dev.danlu.train.lora.LoraModule;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A freshly initialised LlamaForCausalLM written as a Hugging Face directory (config.json,
 * model.safetensors, tokenizer.model), as {@code LlamaForCausalLM(config)} would start: every
 * linear and embedding matrix N(0, initializer_range), every RMSNorm weight 1.
 *
 * <p>Each tensor draws from its own generator seeded by (seed, tensor name), so a tensor's values
 * do not depend on which other tensors exist or in which order they are written: adding a layer
 * leaves the existing layers' weights unchanged, and the model is reproducible from (config, seed)
 * alone.
 */
public final class RandomInit {
  /** HF's LlamaConfig default {@code initializer_range}. */
  public static final double INITIALIZER_RANGE = 0.02;

  private RandomInit() {}

  /** One tensor of the model: its HF name, shape, and whether it is an RMSNorm weight (ones). */
  public record TensorSpec(String name, long[] shape, boolean norm) {
    long elements() {
      long n = 1;
      for (long s : shape) {
        n *= s;
      }
      return n;
    }
  }

  /** Every tensor of {@code c} in HF's names, in the order the file stores them. */
  public static List<TensorSpec> tensors(LlamaConfig c) {
    long dim = c.hiddenSize();
    List<TensorSpec> out = new ArrayList<>();
    out.add(new TensorSpec("model.embed_tokens.weight", new long[] {c.vocabSize(), dim}, false));
    for (int i = 0; i < c.numLayers(); i++) {
      String p = "model.layers." + i + ".";
      out.add(new TensorSpec(p + "input_layernorm.weight", new long[] {dim}, true));
      for (LoraModule m : LoraModule.values()) {
        out.add(new TensorSpec(p + m.path() + ".weight", LlamaWeights.linearShape(c, m), false));
      }
      out.add(new TensorSpec(p + "post_attention_layernorm.weight", new long[] {dim}, true));
    }
    out.add(new TensorSpec("model.norm.weight", new long[] {dim}, true));
    if (!c.tieWordEmbeddings()) {
      out.add(new TensorSpec("lm_head.weight", new long[] {c.vocabSize(), dim}, false));
    }
    return out;
  }

  /**
   * The initial values of one tensor: ones for a norm, else N(0, {@link #INITIALIZER_RANGE}) from a
   * generator keyed by (seed, name).
   */
  public static float[] values(long seed, TensorSpec t) {
    float[] v = new float[Math.toIntExact(t.elements())];
    if (t.norm()) {
      java.util.Arrays.fill(v, 1f);
      return v;
    }
    SplittableRandom rnd = new SplittableRandom(seed ^ nameHash(t.name()));
    for (int i = 0; i < v.length; i++) {
      // Box-Muller, one normal per pair of uniforms: simple and the same on every JVM
      double u1 = 1.0 - rnd.nextDouble();
      double u2 = rnd.nextDouble();
      v[i] =
          (float) (INITIALIZER_RANGE * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
    }
    return v;
  }

  /**
   * Writes {@code dir/config.json}, {@code dir/model.safetensors} (F32) and a copy of {@code
   * tokenizerModel} (when not null) as {@code dir/tokenizer.model}. The safetensors file is written
   * to a temporary name and renamed, so an interrupted run never leaves a truncated model behind.
   */
  public static void writeHfDir(Path dir, LlamaConfig c, long seed, Path tokenizerModel)
      throws IOException {
    if (tokenizerModel != null && !Files.isRegularFile(tokenizerModel)) {
      throw new IOException(tokenizerModel + ": no such tokenizer.model");
    }
    Files.createDirectories(dir);
    List<TensorSpec> specs = tensors(c);
    SafeTensorsWriter.Builder b =
        SafeTensorsWriter.builder(dir.resolve(HfCheckpoint.SINGLE))
            .setDType(DType.F32)
            .optMetadata("format", "pt")
            .optMetadata("danlu.init", "RandomInit seed=" + seed);
    for (TensorSpec t : specs) {
      b.declare(t.name(), t.shape());
    }
    try (SafeTensorsWriter w = b.open()) {
      for (TensorSpec t : specs) {
        w.writeFloats(values(seed, t));
      }
    }
    if (tokenizerModel != null) {
      Path tmp = dir.resolve(".tokenizer.model.tmp");
      Files.copy(tokenizerModel, tmp, StandardCopyOption.REPLACE_EXISTING);
      Files.move(tmp, dir.resolve("tokenizer.model"), StandardCopyOption.REPLACE_EXISTING);
    }
    // config.json last: its presence marks a complete directory for callers that reuse one
    Path cfgTmp = dir.resolve(".config.json.tmp");
    Files.writeString(cfgTmp, configJson(c, seed), StandardCharsets.UTF_8);
    Files.move(cfgTmp, dir.resolve("config.json"), StandardCopyOption.REPLACE_EXISTING);
  }

  /** A Hugging Face config.json for {@code c} that transformers' LlamaConfig also loads. */
  public static String configJson(LlamaConfig c, long seed) {
    ObjectMapper om = new ObjectMapper();
    ObjectNode n = om.createObjectNode();
    n.putArray("architectures").add("LlamaForCausalLM");
    n.put("model_type", "llama");
    n.put("hidden_size", c.hiddenSize());
    n.put("intermediate_size", c.intermediateSize());
    n.put("num_hidden_layers", c.numLayers());
    n.put("num_attention_heads", c.numHeads());
    n.put("num_key_value_heads", c.numKvHeads());
    n.put("vocab_size", c.vocabSize());
    n.put("max_position_embeddings", c.maxPositionEmbeddings());
    n.put("rms_norm_eps", c.rmsNormEps());
    n.put("rope_theta", c.ropeTheta());
    n.putNull("rope_scaling");
    n.put("tie_word_embeddings", c.tieWordEmbeddings());
    n.put("hidden_act", "silu");
    n.put("initializer_range", INITIALIZER_RANGE);
    n.put("bos_token_id", 1);
    n.put("eos_token_id", 2);
    n.put("torch_dtype", "float32");
    n.put("danlu_init_seed", seed);
    try {
      return om.writerWithDefaultPrettyPrinter().writeValueAsString(n) + "\n";
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** First 8 bytes of SHA-256(name): a stable per-name key, unlike String.hashCode's 32 bits. */
  static long nameHash(String name) {
    try {
      byte[] d = MessageDigest.getInstance("SHA-256").digest(name.getBytes(StandardCharsets.UTF_8));
      long h = 0;
      for (int i = 0; i < 8; i++) {
        h = (h << 8) | (d[i] & 0xff);
      }
      return h;
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
