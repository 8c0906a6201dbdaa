package dev.danlu.train.zero;

import dev.danlu.train.optim.WeightDecayRule;
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
 */
public final class FlatParams {

  /** Where a parameter lives in the flat buffer and whether it is weight-decayed. */
  public record Slot(String name, int offset, int length, boolean decay) {}

  private final List<Slot> slots;
  private final int total;
  private final float[] params;
  private final float[] grads;

  private FlatParams(List<Slot> slots, int total, int padded) {
    this.slots = Collections.unmodifiableList(slots);
    this.total = total;
    this.params = new float[padded];
    this.grads = new float[padded];
  }

  /**
   * Lays out {@code trainable} for {@code worldSize} partitions and copies their current values in.
   * Decay follows {@link WeightDecayRule}.
   */
  public static FlatParams of(List<NamedParam> trainable, int worldSize, int alignment) {
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
    FlatParams f =
        new FlatParams(slots, (int) off, ShardInfo.paddedTotal(off, worldSize, alignment));
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
    return grads;
  }

  /**
   * Adds each parameter's gradient into the flat gradient buffer. Call it after every micro-batch
   * if the model overwrites its gradients per micro-batch, or once before {@link
   * Zero2Optimizer#step} if the model accumulates them itself (then zero the model's gradients).
   */
  public void gatherGrads(List<NamedParam> trainable) {
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
