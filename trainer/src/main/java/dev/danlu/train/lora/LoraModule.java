package dev.danlu.train.lora;

import java.util.Locale;

/** The seven linear layers of a LLaMA decoder layer that LoRA can target, with PEFT's names. */
public enum LoraModule {
  Q("self_attn", "q_proj"),
  K("self_attn", "k_proj"),
  V("self_attn", "v_proj"),
  O("self_attn", "o_proj"),
  GATE("mlp", "gate_proj"),
  UP("mlp", "up_proj"),
  DOWN("mlp", "down_proj");

  /** "self_attn" or "mlp": the submodule in HF's LlamaDecoderLayer. */
  public final String block;

  /** PEFT's target_modules name, e.g. "q_proj". */
  public final String projName;

  LoraModule(String block, String projName) {
    this.block = block;
    this.projName = projName;
  }

  /** "self_attn.q_proj", the path inside model.layers.{i}. */
  public String path() {
    return block + "." + projName;
  }

  /** Parses "q_proj" (PEFT target_modules spelling). */
  public static LoraModule fromProjName(String name) {
    for (LoraModule m : values()) {
      if (m.projName.equals(name.toLowerCase(Locale.ROOT))) {
        return m;
      }
    }
    throw new IllegalArgumentException(
        "unknown LoRA target module '"
            + name
            + "' (expected q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj or down_proj)");
  }
}
