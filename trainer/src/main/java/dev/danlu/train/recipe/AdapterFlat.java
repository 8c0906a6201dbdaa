package dev.danlu.train.recipe;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.zero.FlatParams;
import dev.danlu.train.zero.NamedParam;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Moves values between the model's trainable ND4J arrays (LoRA A/B, embed_tokens, lm_head, where
 * backward accumulates gradients over micro-batches) and the optimizer's flat buffers: gradients in
 * once per optimizer step, updated parameters back out. Bulk copies through the arrays' native
 * buffers; the order is {@link LoraAdapter#trainable()}'s, which the flat layout was built from.
 */
public final class AdapterFlat {
  private final List<LoraAdapter.NamedParam> params;
  private final FlatParams flat;
  private final float[] scratch;

  public AdapterFlat(LoraAdapter adapter, int worldSize, int alignment) {
    this.params = adapter.trainable();
    List<NamedParam> named = new ArrayList<>();
    int max = 0;
    for (LoraAdapter.NamedParam p : params) {
      if (p.value().dataType() != DataType.FLOAT) {
        throw new IllegalArgumentException(
            "training keeps fp32 trainable weights; " + p.name() + " is " + p.value().dataType());
      }
      float[] v = p.value().reshape(-1).toFloatVector();
      named.add(new NamedParam(p.name(), v, new float[v.length]));
      max = Math.max(max, v.length);
    }
    this.flat = FlatParams.of(named, worldSize, alignment);
    this.scratch = new float[max];
  }

  public FlatParams flat() {
    return flat;
  }

  /** Adds the model's accumulated gradients into the flat buffer and zeroes the model's. */
  public void moveGradsToFlat() {
    float[] g = flat.grads();
    for (int i = 0; i < params.size(); i++) {
      INDArray grad = params.get(i).grad();
      FlatParams.Slot s = flat.slots().get(i);
      FloatBuffer fb = buffer(grad);
      fb.get(scratch, 0, s.length());
      for (int k = 0; k < s.length(); k++) {
        g[s.offset() + k] += scratch[k];
      }
      // zero through the same view: one memset-like pass, no ND4J op dispatch (OpenMP wake-up)
      Arrays.fill(scratch, 0, s.length(), 0f);
      buffer(grad).put(scratch, 0, s.length());
    }
  }

  /** Copies the replicated flat parameters into the model's arrays. */
  public void copyParamsToModel() {
    float[] p = flat.params();
    for (int i = 0; i < params.size(); i++) {
      FlatParams.Slot s = flat.slots().get(i);
      buffer(params.get(i).value()).put(p, s.offset(), s.length());
    }
  }

  private static FloatBuffer buffer(INDArray a) {
    FloatBuffer fb = a.data().asNio().order(ByteOrder.nativeOrder()).asFloatBuffer();
    fb.position((int) a.offset());
    return fb;
  }
}
