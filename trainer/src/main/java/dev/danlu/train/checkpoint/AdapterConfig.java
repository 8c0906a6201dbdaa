package dev.danlu.train.checkpoint;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;
import java.util.List;
import java.util.Objects;

/**
 * PEFT's {@code adapter_config.json} for a LoRA adapter, field names as PEFT writes them. Only the
 * fields that change what the weights mean are modelled; {@link PeftAdapter#readConfig} rejects
 * files whose other fields would change the math (DoRA, rsLoRA, per-layer rank patterns, ...) and
 * ignores the rest, since each PEFT release adds bookkeeping keys.
 */
@JsonIgnoreProperties(ignoreUnknown = true)
@JsonInclude(JsonInclude.Include.ALWAYS)
@JsonPropertyOrder(alphabetic = true)
public record AdapterConfig(
    @JsonProperty("r") int r,
    @JsonProperty("lora_alpha") int loraAlpha,
    @JsonProperty("lora_dropout") double loraDropout,
    @JsonProperty("target_modules") List<String> targetModules,
    @JsonProperty("modules_to_save") List<String> modulesToSave,
    @JsonProperty("bias") String bias,
    @JsonProperty("fan_in_fan_out") boolean fanInFanOut,
    @JsonProperty("inference_mode") boolean inferenceMode,
    @JsonProperty("base_model_name_or_path") String baseModelNameOrPath,
    @JsonProperty("peft_type") String peftType,
    @JsonProperty("task_type") String taskType,
    @JsonProperty("init_lora_weights") boolean initLoraWeights) {

  /** The seven LLaMA projections Chinese-LLaMA-Alpaca-2 adapts. */
  public static final List<String> LLAMA_TARGETS =
      List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

  public AdapterConfig {
    Objects.requireNonNull(targetModules, "target_modules");
    targetModules = List.copyOf(targetModules);
    modulesToSave = modulesToSave == null ? List.of() : List.copyOf(modulesToSave);
    bias = bias == null ? "none" : bias;
    peftType = peftType == null ? "LORA" : peftType;
    taskType = taskType == null ? "CAUSAL_LM" : taskType;
    if (r <= 0) {
      throw new IllegalArgumentException("adapter_config: r must be positive, got " + r);
    }
    if (loraDropout < 0 || loraDropout >= 1) {
      throw new IllegalArgumentException(
          "adapter_config: lora_dropout must be in [0, 1), got " + loraDropout);
    }
  }

  /**
   * The Chinese-LLaMA-Alpaca-2 recipe's adapter: all seven targets, embed_tokens and lm_head
   * trained in full, no bias, saved for inference.
   */
  public static AdapterConfig llama(int r, int loraAlpha, double dropout, String baseModel) {
    return new AdapterConfig(
        r,
        loraAlpha,
        dropout,
        LLAMA_TARGETS,
        List.of("embed_tokens", "lm_head"),
        "none",
        false,
        true,
        baseModel,
        "LORA",
        "CAUSAL_LM",
        true);
  }

  /** PEFT's LoRA scaling {@code lora_alpha / r}: the factor on {@code B @ A}. */
  public double scaling() {
    return (double) loraAlpha / r;
  }

  /** Whether a module (last name component, e.g. "q_proj") carries LoRA weights. */
  public boolean targets(String moduleName) {
    return targetModules.contains(moduleName);
  }
}
