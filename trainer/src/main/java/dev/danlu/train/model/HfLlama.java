package dev.danlu.train.model;

import dev.danlu.train.checkpoint.HfCheckpoint;
import java.io.IOException;
import java.nio.file.Path;
import org.nd4j.linalg.api.buffer.DataType;

/** Loads a Hugging Face LlamaForCausalLM directory (config.json + safetensors) into weights. */
public final class HfLlama {
  private HfLlama() {}

  /** Reads config.json and every tensor (F32/F16/BF16 on disk) into {@code dtype} arrays. */
  public static LlamaWeights load(Path dir, DataType dtype) throws IOException {
    LlamaConfig config = LlamaConfig.load(dir);
    try (HfCheckpoint ckpt = HfCheckpoint.open(dir)) {
      return LlamaWeights.load(
          config,
          new LlamaWeights.TensorSource() {
            @Override
            public boolean contains(String name) {
              return ckpt.contains(name);
            }

            @Override
            public long[] shape(String name) {
              return ckpt.info(name).shape();
            }

            @Override
            public float[] readFloats(String name) {
              return ckpt.readFloats(name);
            }
          },
          dtype);
    } catch (IOException | RuntimeException e) {
      throw new IOException(dir + ": " + e.getMessage(), e);
    }
  }
}
