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
