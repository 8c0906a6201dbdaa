package dev.danlu.train.optim;

import java.util.Locale;

/**
 * Which parameters get weight decay, as Hugging Face's Trainer decides it: every parameter except
 * biases and the weights of normalization layers ({@code get_decay_parameter_names} excludes {@code
 * LayerNorm}/{@code LlamaRMSNorm} modules and names containing "bias"). We decide by name, because
 * our parameters carry Hugging Face names: a name containing "bias" or "norm" (case-insensitive;
 * matches {@code input_layernorm}, {@code post_attention_layernorm}, {@code model.norm}) is not
 * decayed. LoRA matrices, embeddings and lm_head are decayed, as in the reference run (weight_decay
 * 0.01).
 */
public final class WeightDecayRule {
  private WeightDecayRule() {}

  public static boolean decays(String parameterName) {
    String n = parameterName.toLowerCase(Locale.ROOT);
    return !(n.contains("bias") || n.contains("norm"));
  }
}
