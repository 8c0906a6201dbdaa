package dev.danlu.train.tensor;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The {@code torch_dtype} setting (Hugging Face's {@code from_pretrained(torch_dtype=...)}, which
 * the reference run_pt.sh passes as {@code --torch_dtype float16}): the storage precision of the
 * frozen base weights. Math never runs in half precision here: activations, LoRA weights, trained
 * embed_tokens / lm_head, gradients and optimizer state stay float32, and frozen half weights are
 * upcast a layer at a time (see {@code LlamaWeights#linear}).
 */
public enum TorchDtype {
  /** The checkpoint's own dtype on CUDA; float32 on the CPU backend (see {@link #resolve}). */
  AUTO("auto", null),
  FLOAT32("float32", DataType.FLOAT),
  FLOAT16("float16", DataType.HALF),
  BFLOAT16("bfloat16", DataType.BFLOAT16);

  private final String torchName;
  private final DataType storage;

  TorchDtype(String torchName, DataType storage) {
    this.torchName = torchName;
    this.storage = storage;
  }

  /** The name as torch and config.json spell it. */
  public String torchName() {
    return torchName;
  }

  /** The ND4J dtype frozen weights are stored in; AUTO must be {@link #resolve resolved} first. */
  public DataType storage() {
    if (storage == null) {
      throw new IllegalStateException("torch_dtype auto must be resolved against a checkpoint");
    }
    return storage;
  }

  /** Whether this stores weights in 16 bits. */
  public boolean isHalf() {
    return this == FLOAT16 || this == BFLOAT16;
  }

  /**
   * Parses a torch_dtype value: auto, float32, float16, bfloat16 (also torch's aliases float, half
   * and the safetensors names F32, F16, BF16, case-insensitive).
   *
   * @throws IllegalArgumentException naming the allowed values
   */
  public static TorchDtype parse(String s) {
    String v = s == null ? "" : s.trim().toLowerCase(Locale.ROOT);
    return switch (v) {
      case "auto" -> AUTO;
      case "float32", "float", "fp32", "f32", "torch.float32" -> FLOAT32;
      case "float16", "half", "fp16", "f16", "torch.float16" -> FLOAT16;
      case "bfloat16", "bf16", "torch.bfloat16" -> BFLOAT16;
      default ->
          throw new IllegalArgumentException(
              "torch_dtype '"
                  + s
                  + "' is not one of "
                  + Arrays.stream(values())
                      .map(TorchDtype::torchName)
                      .collect(Collectors.joining(", ")));
    };
  }

  /**
   * The concrete storage dtype: an explicit setting wins; {@code auto} takes the checkpoint's dtype
   * ({@code checkpoint}, e.g. the safetensors dtype of its weights) on CUDA, where half storage is
   * what lets a 7B model fit beside its activations, and float32 on the CPU backend, where there is
   * memory to spare and the per-layer upcast would only cost time.
   */
  public TorchDtype resolve(TorchDtype checkpoint, Backend.Kind backend) {
    if (this != AUTO) {
      return this;
    }
    if (backend == Backend.Kind.CUDA && checkpoint != null && checkpoint != AUTO) {
      return checkpoint;
    }
    return FLOAT32;
  }
}
