package dev.danlu.train.model;

import dev.danlu.train.checkpoint.DType;
import dev.danlu.train.checkpoint.HfCheckpoint;
import dev.danlu.train.checkpoint.SafeTensors;
import dev.danlu.train.checkpoint.TensorInfo;
import dev.danlu.train.tensor.Backend;
import dev.danlu.train.tensor.HalfArrays;
import dev.danlu.train.tensor.TorchDtype;
import java.io.IOException;
import java.nio.file.Path;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Loads a Hugging Face LlamaForCausalLM directory (config.json + safetensors) into weights. */
public final class HfLlama {
  /** The tensor whose on-disk dtype stands for the checkpoint's (the bulk is projections). */
  static final String PROBE = "model.layers.0.self_attn.q_proj.weight";

  private HfLlama() {}

  /**
   * Loads with a {@code torch_dtype} setting: {@code auto} resolves against the checkpoint's stored
   * dtype and the backend (see {@link TorchDtype#resolve}).
   */
  public static LlamaWeights load(Path dir, TorchDtype torchDtype, Backend.Kind backend)
      throws IOException {
    return load(dir, storageFor(dir, torchDtype, backend));
  }

  /** The ND4J storage dtype {@code torchDtype} means for the checkpoint in {@code dir}. */
  public static DataType storageFor(Path dir, TorchDtype torchDtype, Backend.Kind backend)
      throws IOException {
    if (torchDtype != TorchDtype.AUTO) {
      return torchDtype.storage();
    }
    return torchDtype.resolve(checkpointDtype(dir), backend).storage();
  }

  /** The dtype the checkpoint stores its projections in (F32, F16 or BF16 on disk). */
  public static TorchDtype checkpointDtype(Path dir) throws IOException {
    try (HfCheckpoint ckpt = HfCheckpoint.open(dir)) {
      if (!ckpt.contains(PROBE)) {
        throw new IOException(dir + ": checkpoint has no tensor '" + PROBE + "'");
      }
      DType d = ckpt.info(PROBE).dtype();
      return switch (d) {
        case F16 -> TorchDtype.FLOAT16;
        case BF16 -> TorchDtype.BFLOAT16;
        default -> TorchDtype.FLOAT32;
      };
    }
  }

  /**
   * Reads config.json and every tensor (F32/F16/BF16 on disk) into storage dtype {@code dtype}
   * (FLOAT, DOUBLE, HALF or BFLOAT16). A 16-bit tensor already in {@code dtype} is copied bit for
   * bit; anything else is rounded to nearest-even a chunk at a time, as torch's {@code .to()}.
   */
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

            @Override
            public INDArray readHalf(String name, long[] shape, DataType t) {
              TensorInfo info = ckpt.info(name);
              DType want = t == DataType.HALF ? DType.F16 : DType.BF16;
              if (info.dtype() == want) {
                return HalfArrays.fromBits(ckpt.readBytes(name), shape, t);
              }
              SafeTensors st = ckpt.shardOf(name);
              return HalfArrays.fromFloatChunks(
                  (off, dst, n) -> st.readFloats(name, off, dst, 0, n), shape, t);
            }
          },
          dtype);
    } catch (IOException | RuntimeException e) {
      throw new IOException(dir + ": " + e.getMessage(), e);
    }
  }

  /**
   * {@code w} under the rotary settings an adapter was trained with ({@code rope_scaling.json} in
   * {@code adapterDir}, written by a position-interpolation run; see {@link
   * dev.danlu.train.checkpoint.TrainedRope}); {@code w} itself when the directory has none. For
   * evaluating or generating with the unmerged adapter: {@code danlu merge} writes the same
   * settings into the merged config.json.
   */
  public static LlamaWeights withTrainedRope(LlamaWeights w, Path adapterDir) throws IOException {
    java.util.Optional<dev.danlu.train.checkpoint.TrainedRope.Settings> s =
        dev.danlu.train.checkpoint.TrainedRope.read(adapterDir);
    if (s.isEmpty()) {
      return w;
    }
    LlamaConfig.RopeScaling.Type type =
        s.get().type().equals("linear")
            ? LlamaConfig.RopeScaling.Type.LINEAR
            : LlamaConfig.RopeScaling.Type.DYNAMIC;
    return w.withRope(
        w.config()
            .withRopeScaling(
                new LlamaConfig.RopeScaling(type, s.get().factor()),
                s.get().maxPositionEmbeddings()));
  }
}
