package dev.danlu.train.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A PEFT LoRA adapter directory: {@code adapter_config.json} + {@code adapter_model.safetensors},
 * with the key names and layouts PEFT (and everything downstream of it) uses:
 *
 * <ul>
 *   <li>{@code base_model.model.<module>.lora_A.weight} [r, in] and {@code ...lora_B.weight} [out,
 *       r] for each targeted Linear, e.g. module {@code model.layers.3.self_attn.q_proj};
 *   <li>{@code base_model.model.<hf name>} for modules_to_save, i.e. {@code
 *       base_model.model.model.embed_tokens.weight} and {@code base_model.model.lm_head.weight}.
 * </ul>
 *
 * <p>Variants accepted on load (all normalised to the names above): the adapter name left in a key
 * ({@code lora_A.default.weight}, {@code embed_tokens.modules_to_save.default.weight}), {@code
 * embed_tokens.modules_to_save.weight}; PEFT ≥ 0.7 also stores the frozen base copy as {@code
 * <module>.original_module.weight} when the vocabulary was resized, which is dropped (the base
 * model has it). Pickled {@code adapter_model.bin} is refused.
 */
public final class PeftAdapter {
  public static final String CONFIG = "adapter_config.json";
  public static final String WEIGHTS = "adapter_model.safetensors";
  public static final String PREFIX = "base_model.model.";
  public static final String EMBED_KEY = PREFIX + "model.embed_tokens.weight";
  public static final String LM_HEAD_KEY = PREFIX + "lm_head.weight";

  private static final Pattern LORA =
      Pattern.compile("base_model\\.model\\.(.+)\\.lora_([AB])(?:\\.default)?\\.weight");
  private static final Pattern SAVED =
      Pattern.compile(
          "base_model\\.model\\.(.+?)(?:\\.modules_to_save(?:\\.default)?|\\.default)?\\.weight");
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private final AdapterConfig config;
  private final Map<String, FloatTensor> tensors;

  /**
   * Wraps a config and tensors keyed by canonical PEFT names; checks names against the config and
   * LoRA shapes against each other and r.
   */
  public PeftAdapter(AdapterConfig config, Map<String, FloatTensor> tensors) {
    this.config = config;
    this.tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
    validate("adapter");
  }

  public AdapterConfig config() {
    return config;
  }

  /** All tensors by canonical PEFT key, in file order. */
  public Map<String, FloatTensor> tensors() {
    return tensors;
  }

  /** PEFT key of LoRA A or B for a module such as {@code model.layers.0.mlp.down_proj}. */
  public static String loraKey(String module, char which) {
    return PREFIX + module + ".lora_" + which + ".weight";
  }

  /** The Hugging Face module path of a LLaMA projection ("q_proj" in layer 3 → ...). */
  public static String llamaModule(int layer, String proj) {
    String part =
        switch (proj) {
          case "q_proj", "k_proj", "v_proj", "o_proj" -> "self_attn";
          case "gate_proj", "up_proj", "down_proj" -> "mlp";
          default -> throw new IllegalArgumentException("not a LLaMA projection: " + proj);
        };
    return "model.layers." + layer + "." + part + "." + proj;
  }

  /** Modules (HF paths, without ".weight") that carry LoRA A/B, in file order. */
  public List<String> loraModules() {
    return tensors.keySet().stream()
        .map(LORA::matcher)
        .filter(m -> m.matches() && m.group(2).equals("A"))
        .map(m -> m.group(1))
        .toList();
  }

  public FloatTensor loraA(String module) {
    return get(loraKey(module, 'A'));
  }

  public FloatTensor loraB(String module) {
    return get(loraKey(module, 'B'));
  }

  /** The full trained copy of embed_tokens, if saved (modules_to_save). */
  public Optional<FloatTensor> embedTokens() {
    return Optional.ofNullable(tensors.get(EMBED_KEY));
  }

  /** The full trained copy of lm_head, if saved (modules_to_save). */
  public Optional<FloatTensor> lmHead() {
    return Optional.ofNullable(tensors.get(LM_HEAD_KEY));
  }

  private FloatTensor get(String key) {
    FloatTensor t = tensors.get(key);
    if (t == null) {
      throw new IllegalArgumentException("adapter has no tensor '" + key + "'");
    }
    return t;
  }

  /** Reads an adapter directory. */
  public static PeftAdapter load(Path dir) throws IOException {
    if (AdaLoraFiles.isAdaLora(dir)) {
      return AdaLoraFiles.asLora(dir); // the same update as a LoRA adapter
    }
    AdapterConfig config = readConfig(dir.resolve(CONFIG));
    Path weights = dir.resolve(WEIGHTS);
    if (!Files.isRegularFile(weights)) {
      if (Files.exists(dir.resolve("adapter_model.bin"))) {
        throw new IOException(
            dir
                + ": has adapter_model.bin (a PyTorch pickle) but no "
                + WEIGHTS
                + "; danlu never"
                + " reads pickles. Re-save it with PEFT: model.save_pretrained(out,"
                + " safe_serialization=True)");
      }
      throw new IOException(dir + ": missing " + WEIGHTS);
    }
    Map<String, FloatTensor> tensors = new LinkedHashMap<>();
    try (SafeTensors st = SafeTensors.open(weights)) {
      for (String name : st.names()) {
        String key = canonicalKey(name);
        if (key == null) {
          continue; // a frozen base copy PEFT stores beside the trained one
        }
        TensorInfo info = st.info(name);
        if (!info.dtype().isFloat()) {
          throw new IOException(weights + ": tensor '" + name + "' is " + info.dtype());
        }
        FloatTensor t = new FloatTensor(info.shape(), st.readFloats(name));
        FloatTensor prev = tensors.putIfAbsent(key, t);
        if (prev != null && !prev.equals(t)) {
          throw new IOException(
              weights + ": '" + name + "' and another key both map to '" + key + "' but differ");
        }
      }
    }
    try {
      return new PeftAdapter(config, tensors);
    } catch (IllegalArgumentException e) {
      throw new IOException(weights + ": " + e.getMessage(), e);
    }
  }

  /**
   * Maps a stored key to its canonical PEFT key, or null for keys that are deliberately dropped.
   */
  static String canonicalKey(String name) {
    if (name.endsWith(".original_module.weight")) {
      return null;
    }
    Matcher m = LORA.matcher(name);
    if (m.matches()) {
      return loraKey(m.group(1), m.group(2).charAt(0));
    }
    m = SAVED.matcher(name);
    if (m.matches()) {
      return PREFIX + m.group(1) + ".weight";
    }
    return name; // validate() names it as unsupported
  }

  /**
   * Reads {@code adapter_config.json}, refusing settings whose weights this implementation would
   * silently misinterpret.
   */
  public static AdapterConfig readConfig(Path file) throws IOException {
    if (!Files.isRegularFile(file)) {
      throw new IOException(file + ": missing (not a PEFT adapter directory?)");
    }
    JsonNode root = JSON.readTree(file.toFile());
    if (root == null || !root.isObject()) {
      throw new IOException(file + ": must be a JSON object");
    }
    String type = root.path("peft_type").asText("LORA");
    if (!type.equals("LORA")) {
      throw new IOException(file + ": peft_type " + type + " is not supported (only LORA)");
    }
    if (root.path("target_modules").isTextual()) {
      throw new IOException(
          file
              + ": target_modules is a regular expression ('"
              + root.get("target_modules").asText()
              + "'); list the module names instead, e.g. [\"q_proj\", \"v_proj\"]");
    }
    refuseIf(file, root, "use_dora", n -> n.asBoolean(false), "DoRA is not supported");
    refuseIf(
        file,
        root,
        "use_rslora",
        n -> n.asBoolean(false),
        "rsLoRA (scaling alpha/sqrt(r)) is not supported");
    refuseIf(file, root, "rank_pattern", n -> n.size() > 0, "per-module ranks are not supported");
    refuseIf(file, root, "alpha_pattern", n -> n.size() > 0, "per-module alphas are not supported");
    refuseIf(
        file,
        root,
        "layers_to_transform",
        n -> !n.isNull(),
        "layers_to_transform is not supported (adapt all layers)");
    refuseIf(
        file, root, "fan_in_fan_out", n -> n.asBoolean(false), "fan_in_fan_out is for GPT-2 only");
    if (!root.path("bias").asText("none").equals("none")) {
      throw new IOException(file + ": bias '" + root.get("bias").asText() + "' unsupported (none)");
    }
    try {
      return JSON.treeToValue(root, AdapterConfig.class);
    } catch (IOException | IllegalArgumentException e) {
      throw new IOException(file + ": " + e.getMessage(), e);
    }
  }

  private static void refuseIf(
      Path file, JsonNode root, String key, java.util.function.Predicate<JsonNode> bad, String why)
      throws IOException {
    JsonNode n = root.get(key);
    if (n != null && !n.isNull() && bad.test(n)) {
      throw new IOException(file + ": " + key + " = " + n + ": " + why);
    }
  }

  /**
   * Writes {@code adapter_config.json} and {@code adapter_model.safetensors} (each atomically) in
   * F32, PEFT's on-disk precision for trained adapters.
   */
  public void save(Path dir) throws IOException {
    save(dir, DType.F32);
  }

  /** As {@link #save(Path)} with a chosen weight precision. */
  public void save(Path dir, DType dtype) throws IOException {
    Files.createDirectories(dir);
    SafeTensorsWriter.write(dir.resolve(WEIGHTS), tensors, dtype, Map.of("format", "pt"));
    AtomicFiles.writeJson(JSON, dir.resolve(CONFIG), config);
  }

  /** Checks every key is a LoRA A/B of a target module or a modules_to_save weight, and shapes. */
  private void validate(String where) {
    for (Map.Entry<String, FloatTensor> e : tensors.entrySet()) {
      String key = e.getKey();
      long[] s = e.getValue().shape();
      Matcher m = LORA.matcher(key);
      if (m.matches()) {
        String module = m.group(1);
        String name = module.substring(module.lastIndexOf('.') + 1);
        if (!config.targets(name)) {
          throw new IllegalArgumentException(
              where
                  + ": '"
                  + key
                  + "' adapts "
                  + name
                  + ", not in target_modules "
                  + config.targetModules());
        }
        if (s.length != 2) {
          throw new IllegalArgumentException(where + ": '" + key + "' must be 2-D");
        }
        boolean isA = m.group(2).equals("A");
        long rank = isA ? s[0] : s[1];
        if (rank != config.r()) {
          throw new IllegalArgumentException(
              where
                  + ": '"
                  + key
                  + "' has shape "
                  + java.util.Arrays.toString(s)
                  + " but r = "
                  + config.r()
                  + " (lora_A is [r, in], lora_B is [out, r])");
        }
        String other = loraKey(module, isA ? 'B' : 'A');
        if (!tensors.containsKey(other)) {
          throw new IllegalArgumentException(
              where + ": '" + key + "' has no partner '" + other + "'");
        }
        continue;
      }
      Matcher saved = SAVED.matcher(key);
      String module = saved.matches() ? saved.group(1) : "";
      String last = module.substring(module.lastIndexOf('.') + 1);
      if (!saved.matches() || !config.modulesToSave().contains(last)) {
        throw new IllegalArgumentException(
            where
                + ": unsupported tensor '"
                + key
                + "' (expected "
                + "base_model.model.<module>.lora_{A,B}.weight for target_modules "
                + config.targetModules()
                + " or a modules_to_save weight for "
                + config.modulesToSave()
                + ")");
      }
      if (s.length != 2) {
        throw new IllegalArgumentException(where + ": '" + key + "' must be 2-D [vocab, hidden]");
      }
    }
    FloatTensor embed = tensors.get(EMBED_KEY);
    FloatTensor head = tensors.get(LM_HEAD_KEY);
    if (embed != null && head != null && embed.shape()[0] != head.shape()[0]) {
      throw new IllegalArgumentException(
          where
              + ": embed_tokens has "
              + embed.shape()[0]
              + " rows but lm_head has "
              + head.shape()[0]
              + "; both must cover the same vocabulary");
    }
  }
}
