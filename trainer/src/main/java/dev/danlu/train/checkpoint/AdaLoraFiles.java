package dev.danlu.train.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * PEFT's AdaLoRA adapter files: {@code adapter_config.json} with {@code peft_type: ADALORA} and its
 * fields (init_r, target_r, tinit, tfinal, deltaT, beta1, beta2, orth_reg_weight, total_step,
 * rank_pattern keyed {@code model.layers.<i>.<block>.<proj>.lora_E}), and {@code
 * adapter_model.safetensors} with {@code <module>.lora_A} (r_k, in), {@code lora_B} (out, r_k),
 * {@code lora_E} (r_k, 1) and {@code ranknum} (1) per target, cut to the kept ranks r_k as PEFT's
 * save does when there is a rank pattern.
 *
 * <p>Every reader of adapters sees an AdaLoRA directory as the LoRA adapter with the same update
 * ({@link #asLora}): the masked SVD form folded, lora_A = A ⊙ E expanded back to init_r rows (zero
 * where the pattern dropped a triplet), lora_B = B · lora_alpha / (ranknum + 1e-5) with zero
 * columns likewise, r = lora_alpha = init_r (scaling 1). So merge, generate, eval and export-gguf
 * need no AdaLoRA code of their own.
 */
public final class AdaLoraFiles {
  static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
  private static final Pattern TENSOR =
      Pattern.compile("base_model\\.model\\.(.+)\\.(lora_[ABE]|ranknum)(?:\\.default)?");

  private AdaLoraFiles() {}

  /** Whether {@code dir}'s adapter_config.json says peft_type ADALORA. */
  public static boolean isAdaLora(Path dir) throws IOException {
    Path f = dir.resolve(PeftAdapter.CONFIG);
    if (!Files.isRegularFile(f)) {
      return false;
    }
    JsonNode root = JSON.readTree(f.toFile());
    return root != null && "ADALORA".equals(root.path("peft_type").asText(""));
  }

  /** Writes the two files (each atomically); {@code config} is the full adapter_config.json. */
  public static void save(Path dir, ObjectNode config, Map<String, FloatTensor> tensors)
      throws IOException {
    Files.createDirectories(dir);
    SafeTensorsWriter.write(
        dir.resolve(PeftAdapter.WEIGHTS), tensors, DType.F32, Map.of("format", "pt"));
    AtomicFiles.writeJson(JSON, dir.resolve(PeftAdapter.CONFIG), config);
  }

  /**
   * A directory any LoRA reader takes: {@code dir} itself for a LoRA adapter, else a temporary
   * directory (deleted at exit) holding {@link #asLora}'s folded LoRA files.
   */
  public static Path loraView(Path dir) throws IOException {
    if (!isAdaLora(dir)) {
      return dir;
    }
    Path tmp = Files.createTempDirectory("danlu-adalora-as-lora");
    tmp.toFile().deleteOnExit(); // deleted last: registered first
    asLora(dir).save(tmp);
    tmp.resolve(PeftAdapter.WEIGHTS).toFile().deleteOnExit();
    tmp.resolve(PeftAdapter.CONFIG).toFile().deleteOnExit();
    // the other files beside the adapter (a tokenizer saved with it) come along
    try (var files = Files.list(dir)) {
      for (Path f : (Iterable<Path>) files::iterator) {
        String n = f.getFileName().toString();
        if (Files.isRegularFile(f)
            && !n.equals(PeftAdapter.CONFIG)
            && !n.equals(PeftAdapter.WEIGHTS)) {
          Files.copy(f, tmp.resolve(n));
          tmp.resolve(n).toFile().deleteOnExit();
        }
      }
    }
    return tmp;
  }

  /** Reads an AdaLoRA directory as the equivalent LoRA adapter (see the class comment). */
  public static PeftAdapter asLora(Path dir) throws IOException {
    Path cfgFile = dir.resolve(PeftAdapter.CONFIG);
    JsonNode root = JSON.readTree(cfgFile.toFile());
    int initR = root.path("init_r").asInt(0);
    double alpha = root.path("lora_alpha").asDouble(Double.NaN);
    if (initR <= 0 || Double.isNaN(alpha)) {
      throw new IOException(cfgFile + ": an ADALORA config needs init_r > 0 and lora_alpha");
    }
    if (root.path("fan_in_fan_out").asBoolean(false)) {
      throw new IOException(cfgFile + ": fan_in_fan_out is for GPT-2 only");
    }
    if (!root.path("bias").asText("none").equals("none")) {
      throw new IOException(cfgFile + ": bias '" + root.get("bias").asText() + "' unsupported");
    }
    List<String> targets = new ArrayList<>();
    root.path("target_modules").forEach(n -> targets.add(n.asText()));
    if (root.path("target_modules").isTextual()) {
      throw new IOException(cfgFile + ": target_modules as a regular expression is unsupported");
    }
    List<String> save = new ArrayList<>();
    root.path("modules_to_save").forEach(n -> save.add(n.asText()));
    Map<String, boolean[]> pattern = new LinkedHashMap<>();
    JsonNode rp = root.get("rank_pattern");
    if (rp != null && rp.isObject()) {
      rp.fields()
          .forEachRemaining(
              e -> {
                boolean[] keep = new boolean[e.getValue().size()];
                for (int i = 0; i < keep.length; i++) {
                  keep[i] = e.getValue().get(i).asBoolean();
                }
                // "model.layers.0.self_attn.q_proj.lora_E" (".default" when not truncated)
                String k = e.getKey().replace(".default", "");
                pattern.put(k.substring(0, k.length() - ".lora_E".length()), keep);
              });
    }
    Path file = dir.resolve(PeftAdapter.WEIGHTS);
    if (!Files.isRegularFile(file)) {
      throw new IOException(dir + ": missing " + PeftAdapter.WEIGHTS);
    }
    Map<String, Map<String, FloatTensor>> byModule = new LinkedHashMap<>();
    Map<String, FloatTensor> out = new LinkedHashMap<>();
    try (SafeTensors st = SafeTensors.open(file)) {
      for (String name : new TreeSet<>(st.names())) {
        TensorInfo info = st.info(name);
        FloatTensor t = new FloatTensor(info.shape(), st.readFloats(name));
        Matcher m = TENSOR.matcher(name);
        if (m.matches()) {
          byModule.computeIfAbsent(m.group(1), k -> new LinkedHashMap<>()).put(m.group(2), t);
        } else {
          String key = PeftAdapter.canonicalKey(name);
          if (key != null) {
            out.put(key, t);
          }
        }
      }
    }
    for (Map.Entry<String, Map<String, FloatTensor>> e : byModule.entrySet()) {
      String module = e.getKey();
      Map<String, FloatTensor> t = e.getValue();
      FloatTensor a = t.get("lora_A");
      FloatTensor b = t.get("lora_B");
      FloatTensor ev = t.get("lora_E");
      if (a == null || b == null || ev == null) {
        throw new IOException(file + ": " + module + " lacks one of lora_A, lora_B, lora_E");
      }
      int rk = (int) a.shape()[0];
      int in = (int) a.shape()[1];
      int outF = (int) b.shape()[0];
      if (b.shape()[1] != rk || ev.shape()[0] != rk) {
        throw new IOException(
            file + ": " + module + " has lora_A, lora_B, lora_E of different ranks");
      }
      double ranknum = t.containsKey("ranknum") ? t.get("ranknum").data()[0] : initR;
      boolean[] keep = pattern.get(module);
      if (keep == null) {
        if (rk != initR) {
          throw new IOException(
              file
                  + ": "
                  + module
                  + " has rank "
                  + rk
                  + " but init_r "
                  + initR
                  + " and no pattern");
        }
        keep = new boolean[initR];
        java.util.Arrays.fill(keep, true);
      }
      int kept = 0;
      for (boolean k : keep) {
        kept += k ? 1 : 0;
      }
      if (keep.length != initR || (kept != rk && rk != initR)) {
        throw new IOException(
            file
                + ": "
                + module
                + " has rank "
                + rk
                + " but its rank_pattern keeps "
                + kept
                + " of "
                + keep.length);
      }
      float[] la = new float[initR * in];
      float[] lb = new float[outF * initR];
      // PEFT: lora_alpha / (ranknum + 1e-5), ranknum a float32 tensor
      double scale = alpha / ((float) ranknum + 1e-5f);
      int src = 0;
      for (int i = 0; i < initR; i++) {
        boolean stored = rk == initR || keep[i];
        if (!stored) {
          continue; // dropped triplet: zero row of A ⊙ E, zero column of B
        }
        int s = rk == initR ? i : src++;
        float ei = keep[i] || rk == initR ? ev.data()[s] : 0f;
        for (int j = 0; j < in; j++) {
          la[i * in + j] = a.data()[s * in + j] * ei;
        }
        for (int o = 0; o < outF; o++) {
          lb[o * initR + i] = (float) (b.data()[o * rk + s] * scale);
        }
      }
      out.put(PeftAdapter.PREFIX + module + ".lora_A.weight", FloatTensor.of(la, initR, in));
      out.put(PeftAdapter.PREFIX + module + ".lora_B.weight", FloatTensor.of(lb, outF, initR));
    }
    AdapterConfig lora =
        new AdapterConfig(
            initR,
            initR,
            root.path("lora_dropout").asDouble(0),
            targets,
            save,
            "none",
            false,
            true,
            root.path("base_model_name_or_path").asText(null),
            "LORA",
            root.path("task_type").asText("CAUSAL_LM"),
            true);
    try {
      return new PeftAdapter(lora, out);
    } catch (IllegalArgumentException e) {
      throw new IOException(file + ": " + e.getMessage(), e);
    }
  }
}
