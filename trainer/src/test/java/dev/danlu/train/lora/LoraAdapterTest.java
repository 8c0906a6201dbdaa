package dev.danlu.train.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaWeights;
import java.util.EnumSet;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

class LoraAdapterTest {
  private final LlamaConfig c = new LlamaConfig(64, 96, 2, 4, 2, 50, 1e-5, 10000, null, false, 128);
  private final LlamaWeights w = LlamaWeights.random(c, 3, DataType.FLOAT);

  @Test
  void initIsKaimingUniformAndZeroB() {
    LoraAdapter ad =
        LoraAdapter.init(new LoraConfig(16, 32, 0, LoraConfig.allTargets(), false, false, 9), w);
    assertEquals(2.0, ad.scaling());
    INDArray a = ad.loraA[0][LoraModule.DOWN.ordinal()]; // (16, 96): bound 1/sqrt(96)
    double bound = 1 / Math.sqrt(96);
    float[] v = a.reshape(-1).toFloatVector();
    double mean = 0;
    double sq = 0;
    double max = 0;
    for (float x : v) {
      mean += x;
      sq += x * x;
      max = Math.max(max, Math.abs(x));
    }
    mean /= v.length;
    double var = sq / v.length - mean * mean;
    assertTrue(max <= bound, "max " + max + " > bound " + bound);
    assertTrue(max > 0.95 * bound, "max " + max + " does not reach the bound " + bound);
    assertEquals(bound * bound / 3, var, 0.1 * bound * bound / 3); // U(-b, b) has variance b^2/3
    assertEquals(0, mean, 0.05 * bound);
    assertEquals(0.0, ad.loraB[1][LoraModule.Q.ordinal()].norm2Number().doubleValue());
    assertNull(ad.embedTokens);
  }

  @Test
  void initIsKeyedBySeedLayerAndModuleNotByTargetSet() {
    LoraAdapter all =
        LoraAdapter.init(new LoraConfig(4, 8, 0, LoraConfig.allTargets(), false, false, 1), w);
    LoraAdapter some =
        LoraAdapter.init(
            new LoraConfig(4, 8, 0, EnumSet.of(LoraModule.V, LoraModule.UP), false, false, 1), w);
    LoraAdapter other =
        LoraAdapter.init(new LoraConfig(4, 8, 0, LoraConfig.allTargets(), false, false, 2), w);
    int v = LoraModule.V.ordinal();
    assertEquals(all.loraA[1][v], some.loraA[1][v]);
    assertNull(some.loraA[1][LoraModule.Q.ordinal()]);
    assertTrue(!all.loraA[1][v].equals(other.loraA[1][v]));
    assertTrue(!all.loraA[0][v].equals(all.loraA[1][v]));
  }

  @Test
  void dropoutKeepsTheRightFractionAndIsReproducible() {
    int rows = 64;
    int width = 1000;
    byte[] m1 = new byte[rows * width];
    byte[] m2 = new byte[rows * width];
    long[] samples = {5, 6};
    LoraDropout.fillMask(m1, rows, width, 0.25, 7, 3, samples, 32, 1, LoraModule.GATE);
    LoraDropout.fillMask(m2, rows, width, 0.25, 7, 3, samples, 32, 1, LoraModule.GATE);
    assertTrue(java.util.Arrays.equals(m1, m2));
    int kept = 0;
    for (byte b : m1) {
      kept += b;
    }
    assertEquals(0.75, kept / (double) m1.length, 0.01);
    LoraDropout.fillMask(m2, rows, width, 0.25, 7, 3, samples, 32, 1, LoraModule.UP);
    assertTrue(!java.util.Arrays.equals(m1, m2), "modules draw independent masks");
  }

  @Test
  void trainableParamsUsePeftNamesAndOrder() {
    LoraAdapter ad =
        LoraAdapter.init(
            new LoraConfig(4, 8, 0, EnumSet.of(LoraModule.Q, LoraModule.DOWN), true, true, 1), w);
    var names = ad.trainable().stream().map(LoraAdapter.NamedParam::name).toList();
    assertEquals(
        java.util.List.of(
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
            "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
            "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight",
            "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight",
            "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight",
            "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight",
            "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight",
            "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight",
            "base_model.model.model.embed_tokens.weight",
            "base_model.model.lm_head.weight"),
        names);
    long[] shape = ad.trainable().get(3).value().shape();
    assertEquals(64, shape[0]);
    assertEquals(4, shape[1]);
  }

  @Test
  void flatBuffersAreZeroCopyViews() {
    LoraAdapter ad =
        LoraAdapter.init(new LoraConfig(4, 8, 0, LoraConfig.allTargets(), false, true, 1), w);
    LoraAdapter.NamedParam p = ad.trainable().get(1); // layer 0 q_proj lora_B, (64, 4)
    java.nio.FloatBuffer v = p.values();
    assertEquals(64 * 4, v.capacity());
    v.put(5, 0.5f);
    assertEquals(0.5f, p.value().getFloat(1, 1));
    p.grads().put(p.size() - 1, 2f);
    assertEquals(2f, p.grad().getFloat(63, 3));
    LoraAdapter.NamedParam head = ad.trainable().get(ad.trainable().size() - 1);
    assertEquals(50 * 64, head.grads().capacity());
  }
}
