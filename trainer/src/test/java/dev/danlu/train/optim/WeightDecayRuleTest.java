package dev.danlu.train.optim;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class WeightDecayRuleTest {
  @Test
  void biasesAndNormsAreNotDecayed() {
    assertTrue(
        WeightDecayRule.decays("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
    assertTrue(WeightDecayRule.decays("base_model.model.model.embed_tokens.weight"));
    assertTrue(WeightDecayRule.decays("base_model.model.lm_head.weight"));
    assertFalse(WeightDecayRule.decays("model.layers.3.input_layernorm.weight"));
    assertFalse(WeightDecayRule.decays("model.layers.3.post_attention_layernorm.weight"));
    assertFalse(WeightDecayRule.decays("model.norm.weight"));
    assertFalse(WeightDecayRule.decays("score.bias"));
  }
}
