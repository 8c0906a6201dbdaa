package dev.danlu.train.lora;

import dev.danlu.train.checkpoint.AdapterConfig;
import dev.danlu.train.checkpoint.FloatTensor;
import dev.danlu.train.checkpoint.PeftAdapter;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaWeights;
import java.io.IOException;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Converts between the in-memory {@link LoraAdapter} (ND4J arrays, with gradients) and the file
 * model {@link PeftAdapter} (PEFT keys, float32), both ways.
 */
public final class PeftBridge {
  private PeftBridge() {}

  /** The LoraConfig an adapter_config.json describes; {@code seed} keys future dropout masks. */
  public static LoraConfig loraConfig(AdapterConfig ac, long seed) {
    EnumSet<LoraModule> targets = EnumSet.noneOf(LoraModule.class);
    for (String t : ac.targetModules()) {
      targets.add(LoraModule.fromProjName(t));
    }
    for (String m : ac.modulesToSave()) {
      if (!m.equals("embed_tokens") && !m.equals("lm_head")) {
        throw new IllegalArgumentException(
            "modules_to_save entry '" + m + "' is not supported (only embed_tokens, lm_head)");
      }
    }
    return new LoraConfig(
        ac.r(),
        ac.loraAlpha(),
        ac.loraDropout(),
        targets,
        ac.modulesToSave().contains("embed_tokens"),
        ac.modulesToSave().contains("lm_head"),
        seed);
  }

  /** Reads a PEFT adapter directory into a LoraAdapter for {@code model}. */
  public static LoraAdapter load(java.nio.file.Path dir, LlamaConfig model, DataType dt)
      throws IOException {
    return load(dir, model, dt, 0);
  }

  /**
   * As {@link #load(java.nio.file.Path, LlamaConfig, DataType)}, keying the adapter's LoRA dropout
   * masks by {@code seed} (to continue training it).
   */
  public static LoraAdapter load(java.nio.file.Path dir, LlamaConfig model, DataType dt, long seed)
      throws IOException {
    PeftAdapter p = PeftAdapter.load(dir);
    Map<String, FloatTensor> t = p.tensors();
    try {
      return LoraAdapter.fromTensors(
          loraConfig(p.config(), seed),
          model,
          new LlamaWeights.TensorSource() {
            @Override
            public boolean contains(String name) {
              return t.containsKey(name);
            }

            @Override
            public long[] shape(String name) {
              return t.get(name).shape();
            }

            @Override
            public float[] readFloats(String name) {
              return t.get(name).data();
            }
          },
          dt);
    } catch (IOException | RuntimeException e) {
      throw new IOException(dir + ": " + e.getMessage(), e);
    }
  }

  /**
   * Writes the adapter in PEFT's layout to {@code dir}: LoRA through {@link #toPeft}, AdaLoRA as
   * PEFT's AdaLoRA files ({@link dev.danlu.train.checkpoint.AdaLoraFiles}).
   */
  public static void save(LoraAdapter ad, String baseModel, java.nio.file.Path dir)
      throws IOException {
    if (ad.svd == null) {
      toPeft(ad, baseModel).save(dir);
      return;
    }
    dev.danlu.train.checkpoint.AdaLoraFiles.save(
        dir, adaLoraConfig(ad, baseModel), adaLoraTensors(ad));
  }

  /** PEFT's AdaLoraConfig as adapter_config.json, with the current rank pattern. */
  static com.fasterxml.jackson.databind.node.ObjectNode adaLoraConfig(
      LoraAdapter ad, String baseModel) {
    LoraConfig lc = ad.config;
    AdaLoraConfig ac = ad.svd;
    if (lc.alpha() != Math.rint(lc.alpha())) {
      throw new IllegalArgumentException("PEFT stores lora_alpha as an integer, got " + lc.alpha());
    }
    var f = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance;
    var c = f.objectNode();
    c.put("peft_type", "ADALORA");
    c.put("task_type", "CAUSAL_LM");
    c.put("base_model_name_or_path", baseModel);
    // PEFT ignores r for AdaLoRA (every target starts at init_r); target_r is what remains
    c.put("r", ac.targetR());
    c.put("lora_alpha", (int) lc.alpha());
    c.put("lora_dropout", lc.dropout());
    var targets = c.putArray("target_modules");
    lc.targets().forEach(m -> targets.add(m.projName));
    var save = c.putArray("modules_to_save");
    if (ad.embedTokens != null) {
      save.add("embed_tokens");
    }
    if (ad.lmHead != null) {
      save.add("lm_head");
    }
    c.put("bias", "none");
    c.put("fan_in_fan_out", false);
    c.put("inference_mode", true);
    c.put("init_lora_weights", true);
    c.put("init_r", ac.initR());
    c.put("target_r", ac.targetR());
    c.put("tinit", ac.tinit());
    c.put("tfinal", ac.tfinal());
    c.put("deltaT", ac.deltaT());
    c.put("beta1", ac.beta1());
    c.put("beta2", ac.beta2());
    c.put("orth_reg_weight", ac.orthRegWeight());
    c.put("total_step", ac.totalStep());
    if (ad.rankPattern == null) {
      c.putNull("rank_pattern");
    } else {
      var rp = c.putObject("rank_pattern");
      for (int l = 0; l < ad.loraA.length; l++) {
        for (LoraModule m : LoraModule.values()) {
          boolean[] keep = ad.rankPattern[l][m.ordinal()];
          if (keep != null) {
            var arr = rp.putArray("model.layers." + l + "." + m.path() + ".lora_E");
            for (boolean k : keep) {
              arr.add(k);
            }
          }
        }
      }
    }
    return c;
  }

  /**
   * The AdaLoRA tensors under PEFT's keys, cut to the kept ranks when there is a rank pattern (as
   * PEFT's get_peft_model_state_dict does), plus ranknum (init_r) and modules_to_save copies.
   */
  static Map<String, FloatTensor> adaLoraTensors(LoraAdapter ad) {
    Map<String, FloatTensor> t = new LinkedHashMap<>();
    int r = ad.config.rank();
    for (int l = 0; l < ad.loraA.length; l++) {
      for (LoraModule m : LoraModule.values()) {
        int mi = m.ordinal();
        if (ad.loraA[l][mi] == null) {
          continue;
        }
        boolean[] keep = ad.rankPattern == null ? null : ad.rankPattern[l][mi];
        int[] rows = new int[r];
        int k = 0;
        for (int i = 0; i < r; i++) {
          if (keep == null || keep[i]) {
            rows[k++] = i;
          }
        }
        float[] a = ad.loraA[l][mi].reshape(-1).toFloatVector();
        float[] b = ad.loraB[l][mi].reshape(-1).toFloatVector();
        float[] e = ad.loraE[l][mi].reshape(-1).toFloatVector();
        int in = a.length / r;
        int out = b.length / r;
        float[] ka = new float[k * in];
        float[] kb = new float[out * k];
        float[] ke = new float[k];
        for (int j = 0; j < k; j++) {
          System.arraycopy(a, rows[j] * in, ka, j * in, in);
          for (int o = 0; o < out; o++) {
            kb[o * k + j] = b[o * r + rows[j]];
          }
          ke[j] = e[rows[j]];
        }
        t.put(LoraAdapter.adaLoraKey(l, m, "lora_A"), FloatTensor.of(ka, k, in));
        t.put(LoraAdapter.adaLoraKey(l, m, "lora_B"), FloatTensor.of(kb, out, k));
        t.put(LoraAdapter.adaLoraKey(l, m, "lora_E"), FloatTensor.of(ke, k, 1));
        t.put(LoraAdapter.adaLoraKey(l, m, "ranknum"), FloatTensor.of(new float[] {r}, 1));
      }
    }
    if (ad.embedTokens != null) {
      t.put(
          LoraAdapter.EMBED_KEY,
          FloatTensor.of(
              ad.embedTokens.castTo(DataType.FLOAT).reshape(-1).toFloatVector(),
              ad.embedTokens.shape()));
    }
    if (ad.lmHead != null) {
      t.put(
          LoraAdapter.LM_HEAD_KEY,
          FloatTensor.of(
              ad.lmHead.castTo(DataType.FLOAT).reshape(-1).toFloatVector(), ad.lmHead.shape()));
    }
    return t;
  }

  /** The adapter as PEFT tensors + config, ready for {@link PeftAdapter#save}. */
  public static PeftAdapter toPeft(LoraAdapter ad, String baseModel) {
    LoraConfig lc = ad.config;
    if (lc.alpha() != Math.rint(lc.alpha())) {
      throw new IllegalArgumentException("PEFT stores lora_alpha as an integer, got " + lc.alpha());
    }
    List<String> targets = lc.targets().stream().map(m -> m.projName).toList();
    List<String> save = new java.util.ArrayList<>();
    if (ad.embedTokens != null) {
      save.add("embed_tokens");
    }
    if (ad.lmHead != null) {
      save.add("lm_head");
    }
    AdapterConfig ac =
        new AdapterConfig(
            lc.rank(),
            (int) lc.alpha(),
            lc.dropout(),
            targets,
            save,
            "none",
            false,
            true,
            baseModel,
            "LORA",
            "CAUSAL_LM",
            true);
    Map<String, FloatTensor> tensors = new LinkedHashMap<>();
    java.util.Set<String> heads = new java.util.HashSet<>();
    ad.heads().forEach(h -> heads.add(h.name()));
    for (LoraAdapter.NamedParam p : ad.trainable()) {
      if (heads.contains(p.name())) {
        continue; // a value head is not PEFT's: its owner writes it (value_head.safetensors)
      }
      tensors.put(
          p.name(),
          FloatTensor.of(
              p.value().castTo(DataType.FLOAT).reshape(-1).toFloatVector(), p.value().shape()));
    }
    return new PeftAdapter(ac, tensors);
  }
}
