package dev.danlu.train.recipe;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.zero.FlatParams;
import dev.danlu.train.zero.NamedParam;
import dev.danlu.train.zero.ShardInfo;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Moves values between the model's trainable ND4J arrays (LoRA A/B, embed_tokens, lm_head, where
 * backward accumulates gradients over micro-batches) and the optimizer's flat buffers: gradients in
 * once per optimizer step, updated parameters back out. Bulk copies through the arrays' native
 * buffers.
 *
 * <p>The flat layout is ordered by depth — embed_tokens, layer 0 ... layer L-1, lm_head — the
 * reverse of the order in which backward finishes gradients, so what is final at any moment of the
 * last micro-batch's backward is a suffix of the flat buffer and can be reduce-scattered while
 * backward continues ({@link #moveFinalGrads}). Checkpoints name optimizer state by parameter, so
 * the layout is free to differ from {@link LoraAdapter#trainable()}'s order.
 */
public final class AdapterFlat {
  private final List<LoraAdapter.NamedParam> params; // in flat order
  private final int[] depth; // per slot: -1 embed_tokens, l for layer l, numLayers for lm_head
  private final FlatParams flat;
  private final float[] scratch;
  private final float[] tile = new float[4096];
  private int movedFrom; // slots [movedFrom, size) were moved into the flat buffer this step

  public AdapterFlat(LoraAdapter adapter, int worldSize, int alignment) {
    this(adapter, worldSize, alignment, false);
  }

  /**
   * @param directGrads keep the flat gradients in a direct buffer (for a communicator with {@link
   *     dev.danlu.train.comm.Communicator#zeroCopyBuffers()}) when they fit one (2 GB); otherwise,
   *     and when false, in an array
   */
  public AdapterFlat(LoraAdapter adapter, int worldSize, int alignment, boolean directGrads) {
    Map<INDArray, Integer> depthOf = new IdentityHashMap<>();
    int layers = adapter.loraA.length;
    for (int l = 0; l < layers; l++) {
      for (int m = 0; m < adapter.loraA[l].length; m++) {
        if (adapter.loraA[l][m] != null) {
          depthOf.put(adapter.loraA[l][m], l);
          depthOf.put(adapter.loraB[l][m], l);
          if (adapter.loraE != null) {
            depthOf.put(adapter.loraE[l][m], l); // AdaLoRA's singular values (ranknum is fixed)
          }
        }
      }
    }
    if (adapter.embedTokens != null) {
      depthOf.put(adapter.embedTokens, -1);
    }
    if (adapter.lmHead != null) {
      depthOf.put(adapter.lmHead, layers);
    }
    for (LoraAdapter.NamedParam h : adapter.heads()) {
      depthOf.put(h.value(), layers); // on the final hidden state: final with lm_head
    }
    List<LoraAdapter.NamedParam> ordered = new ArrayList<>(adapter.trainable());
    for (LoraAdapter.NamedParam p : ordered) {
      if (!depthOf.containsKey(p.value())) {
        throw new IllegalStateException(
            "trainable " + p.name() + " is neither LoRA, embed_tokens, lm_head nor a head");
      }
    }
    ordered.sort(Comparator.comparingInt(p -> depthOf.get(p.value()))); // stable
    this.params = ordered;
    this.depth = new int[ordered.size()];
    List<NamedParam> named = new ArrayList<>();
    int max = 0;
    for (int i = 0; i < ordered.size(); i++) {
      LoraAdapter.NamedParam p = ordered.get(i);
      if (p.value().dataType() != DataType.FLOAT) {
        throw new IllegalArgumentException(
            "training keeps fp32 trainable weights; " + p.name() + " is " + p.value().dataType());
      }
      depth[i] = depthOf.get(p.value());
      float[] v = p.value().reshape(-1).toFloatVector();
      named.add(new NamedParam(p.name(), v, new float[v.length]));
      max = Math.max(max, v.length);
    }
    long total = 0;
    for (NamedParam p : named) {
      total += p.data().length;
    }
    boolean direct =
        directGrads && FlatParams.fitsDirect(ShardInfo.paddedTotal(total, worldSize, alignment));
    this.flat = FlatParams.of(named, worldSize, alignment, direct);
    this.scratch = new float[max];
    this.movedFrom = ordered.size();
  }

  public FlatParams flat() {
    return flat;
  }

  /**
   * For backward's hook ({@code Llama.backward}'s {@code gradsFinal}): the gradients of everything
   * at depth {@code >= d} are final. Moves those not moved yet into the flat buffer (zeroing the
   * model's) and returns where the final suffix of the flat buffer now starts, for {@link
   * dev.danlu.train.zero.Zero2Optimizer#gradientsReady}. Call with decreasing {@code d} on the last
   * micro-batch of a step, then {@link #moveGradsToFlat} for the rest.
   */
  public int moveFinalGrads(int d) {
    int k = movedFrom;
    while (k > 0 && depth[k - 1] >= d) {
      k--;
    }
    move(k, movedFrom);
    movedFrom = k;
    return k == params.size() ? flat.padded() : flat.slots().get(k).offset();
  }

  /**
   * Adds the model's accumulated gradients into the flat buffer and zeroes the model's: all of
   * them, or those {@link #moveFinalGrads} has not moved this step.
   */
  public void moveGradsToFlat() {
    move(0, movedFrom);
    movedFrom = params.size();
  }

  private void move(int from, int to) {
    float[] g = flat.directGrads() ? null : flat.grads();
    FloatBuffer gd = flat.directGrads() ? flat.gradFloats() : null;
    for (int i = from; i < to; i++) {
      INDArray grad = params.get(i).grad();
      FlatParams.Slot s = flat.slots().get(i);
      FloatBuffer fb = buffer(grad);
      fb.get(scratch, 0, s.length());
      if (g != null) {
        for (int k = 0; k < s.length(); k++) {
          g[s.offset() + k] += scratch[k];
        }
      } else {
        for (int k = 0; k < s.length(); k += tile.length) { // through an L1-sized tile
          int n = Math.min(tile.length, s.length() - k);
          gd.get(s.offset() + k, tile, 0, n);
          for (int j = 0; j < n; j++) {
            tile[j] += scratch[k + j];
          }
          gd.put(s.offset() + k, tile, 0, n);
        }
      }
      // zero through the same view: one memset-like pass, no ND4J op dispatch (OpenMP wake-up)
      Arrays.fill(scratch, 0, s.length(), 0f);
      buffer(grad).put(scratch, 0, s.length());
    }
  }

  /** The flat slot of the trainable named {@code name} (a PEFT key), or null. */
  public FlatParams.Slot slot(String name) {
    for (FlatParams.Slot s : flat.slots()) {
      if (s.name().equals(name)) {
        return s;
      }
    }
    return null;
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
