package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.config.ConfigLoader;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.model.NtkAlpha;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * {@code rope_scaling: linear} turns a 4K model trained at 16384 tokens into the reference's 16K
 * config ({@code {type: linear, factor: 4}}, max_position_embeddings 16384); {@code ntk_alpha}
 * reaches the weights' config; mistakes are one clear error.
 */
class LongContextSetupTest {
  private static final String BASE =
      "model_name_or_path: /m\ndataset_dir: /d\noutput_dir: /o\nmax_steps: 1\n";
  private final LlamaWeights w =
      LlamaWeights.random(
          new LlamaConfig(16, 24, 1, 4, 2, 40, 1e-5, 10000.0, null, false, 4096),
          1,
          DataType.FLOAT);

  private static TrainConfig cfg(String... overrides) {
    return ConfigLoader.load(BASE, "t.yaml", List.of(overrides)).config();
  }

  @Test
  void linearInterpolationToTheTrainingLength() {
    LlamaConfig c =
        ModelSetup.longContext(cfg("rope_scaling=linear", "block_size=16384"), w).config();
    assertEquals(LlamaConfig.RopeScaling.Type.LINEAR, c.ropeScaling().type());
    assertEquals(4.0, c.ropeScaling().factor());
    assertEquals(16384, c.maxPositionEmbeddings());
    // 10000 tokens: ceil(10000 / 4096) = 3
    assertEquals(
        3.0,
        ModelSetup.longContext(cfg("rope_scaling=linear", "block_size=10000"), w)
            .config()
            .ropeScaling()
            .factor());
    LlamaConfig sft =
        ModelSetup.longContext(cfg("stage=sft", "rope_scaling=linear", "max_seq_length=8192"), w)
            .config();
    assertEquals(2.0, sft.ropeScaling().factor());
  }

  @Test
  void ntkAlphaAndNothing() {
    assertSame(w, ModelSetup.longContext(cfg(), w));
    assertEquals(NtkAlpha.AUTO, ModelSetup.longContext(cfg("ntk_alpha=auto"), w).config().ntk());
  }

  @Test
  void mistakesAreNamed() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> ModelSetup.longContext(cfg("rope_scaling=linear"), w));
    assertTrue(e.getMessage().contains("set block_size"), e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> ModelSetup.longContext(cfg("rope_scaling=linear", "block_size=2048"), w));
    assertTrue(e.getMessage().contains("not longer than"), e.getMessage());
  }
}
