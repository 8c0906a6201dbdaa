package dev.danlu.train.zero;

import dev.danlu.train.optim.WeightDecayRule;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Every trainable parameter laid end to end in one padded buffer (and one for gradients), in the
 * order given; what ZeRO partitions. A model may train directly on views of these arrays (no
 * copies), or keep its own arrays and call {@link #gatherGrads}/{@link #scatterParams} around the
 * optimizer step.
 *
 * <p>The gradients live either in a {@code float[]} ({@link #grads()}) or, for communicators with a
 * zero-copy path ({@link dev.danlu.train.comm.Communicator#zeroCopyBuffers()}), in a direct
 * little-endian buffer ({@link #gradBuffer()}) that the TCP ring sends from and reduces into in
 * place, saving the copy of every sent slice. One direct buffer holds at most 2 GB, so larger
 * layouts stay on the array.
 */
public final class FlatParams {

  /** Where a parameter lives in the flat buffer and whether it is weight-decayed. */
  public record Slot(String name, int offset, int length, boolean decay) {}

  private final List<Slot> slots;
  private final int total;
  private final float[] params;
  private final float[] grads; // null when the gradients are direct
  private final ByteBuffer gradBuf; // null when they are an array

  private FlatParams(List<Slot> slots, int total, int padded, boolean direct) {
    this.slots = Collections.unmodifiableList(slots);
    this.total = total;
    this.params = new float[padded];
    this.grads = direct ? null : new float[padded];
    this.gradBuf =
        direct ? ByteBuffer.allocateDirect(4 * padded).order(ByteOrder.LITTLE_ENDIAN) : null;
  }

  /** Whether {@code padded} floats fit one direct buffer (2 GB). */
  public static boolean fitsDirect(int padded) {
    return 4L * padded <= Integer.MAX_VALUE;
  }

  /**
   * Lays out {@code trainable} for {@code worldSize} partitions and copies their current values in.
   * Decay follows {@link WeightDecayRule}.
   */
  public static FlatParams of(List<NamedParam> trainable, int worldSize, int alignment) {
    return of(trainable, worldSize, alignment, false);
  }

  /**
   * As {@link #of(List, int, int)}, with the gradients in a direct buffer when {@code directGrads}
   * (which must then {@link #fitsDirect fit}).
   */
  public static FlatParams of(
      List<NamedParam> trainable, int worldSize, int alignment, boolean directGrads) {
    List<Slot> slots = new ArrayList<>();
    Set<String> seen = new HashSet<>();
    long off = 0;
    for (NamedParam p : trainable) {
      if (!seen.add(p.name())) {
        throw new IllegalArgumentException("trainable parameter " + p.name() + " listed twice");
      }
      slots.add(new Slot(p.name(), (int) off, p.data().length, WeightDecayRule.decays(p.name())));
      off += p.data().length;
    }
    int padded = ShardInfo.paddedTotal(off, worldSize, alignment);
    if (directGrads && !fitsDirect(padded)) {
      throw new IllegalArgumentException(
          padded + " floats of gradients exceed one direct buffer (2 GB); keep them in an array");
    }
    FlatParams f = new FlatParams(slots, (int) off, padded, directGrads);
    for (int i = 0; i < trainable.size(); i++) {
      float[] d = trainable.get(i).data();
      System.arraycopy(d, 0, f.params, slots.get(i).offset(), d.length);
    }
    return f;
  }

  public List<Slot> slots() {
    return slots;
  }

  /** Real trainable elements (without padding). */
  public int total() {
    return total;
  }

  public int padded() {
    return params.length;
  }

  /** The replicated parameter values (padding stays zero). */
  public float[] params() {
    return params;
  }

  /** The locally accumulated gradients; the optimizer zeroes them after each step. */
  public float[] grads() {
    if (grads == null) {
      throw new IllegalStateException("the gradients live in a direct buffer: use gradBuffer()");
    }
    return grads;
  }

  /** Whether the gradients live in {@link #gradBuffer()} rather than {@link #grads()}. */
  public boolean directGrads() {
    return gradBuf != null;
  }

  /**
   * The gradients as a direct little-endian buffer (float i at byte 4i), when {@link
   * #directGrads()}.
   */
  public ByteBuffer gradBuffer() {
    if (gradBuf == null) {
      throw new IllegalStateException("the gradients live in an array: use grads()");
    }
    return gradBuf;
  }

  /** A float view of {@link #gradBuffer()} for element access (absolute indices). */
  public FloatBuffer gradFloats() {
    return gradBuffer().duplicate().clear().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
  }

  /**
   * Adds each parameter's gradient into the flat gradient buffer. Call it after every micro-batch
   * if the model overwrites its gradients per micro-batch, or once before {@link
   * Zero2Optimizer#step} if the model accumulates them itself (then zero the model's gradients).
   */
  public void gatherGrads(List<NamedParam> trainable) {
    if (gradBuf != null) {
      FloatBuffer g = gradFloats();
      for (int i = 0; i < slots.size(); i++) {
        float[] src = trainable.get(i).grad();
        int o = slots.get(i).offset();
        for (int k = 0; k < src.length; k++) {
          g.put(o + k, g.get(o + k) + src[k]);
        }
      }
      return;
    }
    for (int i = 0; i < slots.size(); i++) {
      float[] g = trainable.get(i).grad();
      int o = slots.get(i).offset();
      for (int k = 0; k < g.length; k++) {
        grads[o + k] += g[k];
      }
    }
  }

  /** Copies the flat values back into each parameter's own array. */
  public void scatterParams(List<NamedParam> trainable) {
    for (int i = 0; i < slots.size(); i++) {
      float[] d = trainable.get(i).data();
      System.arraycopy(params, slots.get(i).offset(), d, 0, d.length);
    }
  }
}
