package dev.danlu.train.lora;

import java.util.EnumSet;
import java.util.Set;

/**
 * LoRA hyper-parameters (PEFT's LoraConfig): rank r, lora_alpha (scaling = alpha / r), dropout on
 * the LoRA branch's input, target modules, and which full matrices are trained too
 * ("modules_to_save": embed_tokens, lm_head). {@code seed} keys the initial A and the dropout
 * masks.
 */
public record LoraConfig(
    int rank,
    double alpha,
    double dropout,
    Set<LoraModule> targets,
    boolean trainEmbedTokens,
    boolean trainLmHead,
    long seed) {

  public LoraConfig {
    if (rank <= 0) {
      throw new IllegalArgumentException("LoRA rank must be positive, got " + rank);
    }
    if (!(dropout >= 0 && dropout < 1)) {
      throw new IllegalArgumentException("lora_dropout must be in [0, 1), got " + dropout);
    }
    targets = targets.isEmpty() ? EnumSet.noneOf(LoraModule.class) : EnumSet.copyOf(targets);
  }

  /** All seven projections, as Chinese-LLaMA-Alpaca-2's scripts use. */
  public static Set<LoraModule> allTargets() {
    return EnumSet.allOf(LoraModule.class);
  }

  public double scaling() {
    return alpha / rank;
  }
}
