package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.train.config.ConfigLoader;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.lora.LoraAdapter;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Training honours torch_dtype: the frozen base is stored as asked (auto on the CPU backend is
 * float32 even for a float16 checkpoint), while LoRA, the trained (and resized) embed_tokens /
 * lm_head and therefore gradients and optimizer state are float32.
 */
class ModelSetupDtypeTest {
  static final Path F16_MODEL = Path.of("src/test/resources/reference/tiny-llama-f16");

  @ParameterizedTest
  @CsvSource({
    "float16, 131, HALF",
    "bfloat16, 131, BFLOAT16",
    "float32, 131, FLOAT",
    "auto, 131, FLOAT",
    "float16, 147, HALF"
  })
  void frozenBaseInTorchDtypeTrainablesInFloat32(String torchDtype, int tokVocab, String stored)
      throws Exception {
    TrainConfig cfg =
        ConfigLoader.load(
                "model_name_or_path: "
                    + F16_MODEL.toAbsolutePath()
                    + "\ndataset_dir: /d\noutput_dir: /o\nmax_steps: 1\nlora_rank: 4\n",
                "t.yaml",
                List.of("torch_dtype=" + torchDtype))
            .config();
    Manifest.Params data =
        new Manifest.Params("sha", "tokenizer.model", tokVocab, 1, 2, 16, "group", 0, "x", 1000);
    ModelSetup m = ModelSetup.load(cfg, data.vocabSize());
    assertEquals(DataType.valueOf(stored), m.weights().storageType());
    assertEquals(DataType.valueOf(stored), m.weights().embedTokens().dataType());
    assertEquals(DataType.FLOAT, m.weights().norm().dataType());
    assertEquals(tokVocab, m.config().vocabSize());
    for (LoraAdapter.NamedParam p : m.adapter().trainable()) {
      assertEquals(DataType.FLOAT, p.value().dataType(), p.name());
      assertEquals(DataType.FLOAT, p.grad().dataType(), p.name());
    }
    assertEquals(tokVocab, m.adapter().embedTokens.size(0));
    assertEquals(
        m.weights().embedTokens().castTo(DataType.FLOAT).getFloat(3, 5),
        m.adapter().embedTokens.getFloat(3, 5),
        "the trained copy starts from the stored (rounded) values");
  }
}
