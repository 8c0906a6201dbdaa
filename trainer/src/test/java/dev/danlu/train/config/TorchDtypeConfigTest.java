package dev.danlu.train.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.tensor.Backend;
import dev.danlu.train.tensor.TorchDtype;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The torch_dtype key: parsed, validated with the allowed values, auto resolved per backend. */
class TorchDtypeConfigTest {
  private static final String MINIMAL =
      "model_name_or_path: /m\ndataset_dir: /d\noutput_dir: /o\nmax_steps: 10\n";

  @Test
  void defaultIsAutoAndValuesBind() {
    assertEquals(
        TorchDtype.AUTO,
        ConfigLoader.load(MINIMAL, "t.yaml", List.of()).config().torchDtypeSetting());
    assertEquals(
        TorchDtype.BFLOAT16,
        ConfigLoader.load(MINIMAL, "t.yaml", List.of("torch_dtype=bfloat16"))
            .config()
            .torchDtypeSetting());
    ConfigLoader.Loaded l =
        ConfigLoader.load(MINIMAL + "torch_dtype: float16\n", "t.yaml", List.of());
    assertEquals(TorchDtype.FLOAT16, l.config().torchDtypeSetting());
    assertTrue(l.warnings().isEmpty(), "torch_dtype is no longer an ignored key: " + l.warnings());
  }

  @Test
  void unknownValueNamesTheKeyAndTheChoices() {
    ConfigException e =
        assertThrows(
            ConfigException.class,
            () -> ConfigLoader.load(MINIMAL + "torch_dtype: float8\n", "t.yaml", List.of()));
    assertTrue(e.getMessage().contains("torch_dtype 'float8'"), e.getMessage());
    assertTrue(e.getMessage().contains("auto, float32, float16, bfloat16"), e.getMessage());
  }

  @Test
  void autoIsTheCheckpointsDtypeOnCudaAndFloat32OnCpu() {
    assertEquals(
        TorchDtype.FLOAT16, TorchDtype.AUTO.resolve(TorchDtype.FLOAT16, Backend.Kind.CUDA));
    assertEquals(
        TorchDtype.BFLOAT16, TorchDtype.AUTO.resolve(TorchDtype.BFLOAT16, Backend.Kind.CUDA));
    assertEquals(TorchDtype.FLOAT32, TorchDtype.AUTO.resolve(TorchDtype.FLOAT16, Backend.Kind.CPU));
    assertEquals(
        TorchDtype.FLOAT16, TorchDtype.FLOAT16.resolve(TorchDtype.FLOAT32, Backend.Kind.CPU));
    assertEquals(TorchDtype.FLOAT16, TorchDtype.parse("torch.float16"));
    assertEquals(TorchDtype.BFLOAT16, TorchDtype.parse("BF16"));
    assertThrows(IllegalStateException.class, () -> TorchDtype.AUTO.storage());
  }

  @Test
  void sevenBillionConfigStoresFrozenWeightsInFloat16LikeTheReference() {
    Path repo = Path.of(System.getProperty("danlu.repo.dir", "..")).toAbsolutePath();
    TrainConfig c =
        ConfigLoader.load(repo.resolve("conf/llama2-7b-pretrain.yaml"), List.of()).config();
    assertEquals(TorchDtype.FLOAT16, c.torchDtypeSetting());
    assertTrue(c.fp16());
  }
}
