package dev.danlu.train.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.testkit.Floats;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The KV cache under length-dependent rotary tables: with the reference's store_kv_before_rope the
 * step logits at every length equal a full forward over the prefix (which builds its tables for
 * that length), also after the length passes max_position_embeddings and NTK alpha auto changes the
 * base at every step; keys rotated when written (HF's cache) drift away there. A fixed alpha with
 * PI gives tables that do not depend on the length: both cache modes equal the forward.
 */
class GeneratorNtkTest {
  private static final int MAX_POS = 16;
  private static final int LEN = 28;

  private final LlamaWeights base = peaked(TinyModels.config(null, MAX_POS));

  /** Random weights with q and k scaled up, so that attention (and rotary) decides the logits. */
  private static LlamaWeights peaked(LlamaConfig c) {
    LlamaWeights w = LlamaWeights.random(c, 3, DataType.FLOAT);
    for (LlamaWeights.Layer l : w.layers()) {
      l.wq().muli(6);
      l.wk().muli(6);
    }
    return w;
  }

  private int[] tokens() {
    SplittableRandom r = new SplittableRandom(4);
    int[] ids = new int[LEN];
    for (int i = 0; i < LEN; i++) {
      ids[i] = r.nextInt(base.config().vocabSize());
    }
    return ids;
  }

  /** Largest relative difference of step logits vs the full forward's last row, per position. */
  private double[] stepVsForward(LlamaWeights w, boolean storeBeforeRope) {
    int[] ids = tokens();
    Generator g = new Generator(w, LEN, storeBeforeRope);
    double[] err = new double[LEN];
    for (int pos = 0; pos < LEN; pos++) {
      float[] step = g.step(ids[pos], pos);
      int len = pos + 1;
      LlamaState s = new LlamaState(w.config(), 1, len, null, false, DataType.FLOAT);
      Llama.forwardLogits(w, null, s, Batch.of(1, len, java.util.Arrays.copyOf(ids, len), null));
      float[] all = s.logits.dup().data().asFloat();
      int v = w.config().vocabSize();
      float[] last = java.util.Arrays.copyOfRange(all, pos * v, len * v);
      err[pos] = Floats.maxAbsDiff(step, last) / Floats.maxAbs(last);
    }
    return err;
  }

  @Test
  void storingKeysBeforeRopeKeepsTheCacheExactUnderAutoNtk() {
    LlamaConfig oneLayer =
        new LlamaConfig(16, 24, 1, 4, 2, 40, 1e-5, 10000.0, null, false, MAX_POS);
    LlamaWeights w = peaked(oneLayer).withNtk(NtkAlpha.AUTO);
    double[] stored = stepVsForward(w, true);
    double[] rotated = stepVsForward(w, false);
    for (int pos = 0; pos < LEN; pos++) {
      // the step and the forward sum over the same keys in other orders (float32, ≤ 28 terms)
      assertTrue(stored[pos] <= 1e-5, "store_kv_before_rope, position " + pos + ": " + stored[pos]);
      if (pos < MAX_POS) {
        assertTrue(rotated[pos] <= 1e-5, "position " + pos + " (base unchanged): " + rotated[pos]);
      }
    }
    // past max_position_embeddings the keys rotated with an older base are wrong: beyond the
    // tolerance and far beyond what the stored-before-rope cache is off by
    double worstStored = java.util.Arrays.stream(stored).max().orElseThrow();
    assertTrue(
        rotated[LEN - 1] > 2e-5 && rotated[LEN - 1] > 50 * worstStored,
        "stale keys should move the logits: " + rotated[LEN - 1] + " vs " + worstStored);
  }

  @Test
  void fixedAlphaWithInterpolationIsLengthIndependent() {
    LlamaConfig c =
        base.config()
            .withRopeScaling(
                new LlamaConfig.RopeScaling(LlamaConfig.RopeScaling.Type.LINEAR, 2.0), MAX_POS * 2)
            .withNtk(NtkAlpha.fixed(1.7));
    LlamaWeights w = base.withRope(c);
    for (boolean store : new boolean[] {true, false}) {
      double[] err = stepVsForward(w, store);
      for (int pos = 0; pos < LEN; pos++) {
        assertTrue(err[pos] <= 1e-5, "store " + store + ", position " + pos + ": " + err[pos]);
      }
    }
  }

  @Test
  void blockFeedEqualsStepsWithKeysStoredBeforeRope() {
    // eval mc's prefix cache feeds blocks (Generator.feed): with store_kv_before_rope the block
    // stores keys unrotated and rotates them on read, like step; a 20-token prefix block crossing
    // nothing, then an 8-token block past max_position_embeddings where NTK auto moves the base
    LlamaConfig oneLayer =
        new LlamaConfig(16, 24, 1, 4, 2, 40, 1e-5, 10000.0, null, false, MAX_POS);
    LlamaWeights w = peaked(oneLayer).withNtk(NtkAlpha.AUTO);
    int[] ids = tokens();
    Generator stepped = new Generator(w, LEN, true);
    float[] byStep = null;
    for (int pos = 0; pos < LEN; pos++) {
      byStep = stepped.step(ids[pos], pos);
    }
    Generator fed = new Generator(w, LEN, true);
    fed.feed(ids, 0, 20, 0);
    float[] byBlock = fed.feed(ids, 20, LEN, 20);
    // the block's gemm sums over other shapes than the steps (float32, ≤ 28 terms)
    double err = Floats.maxAbsDiff(byBlock, byStep) / Floats.maxAbs(byStep);
    assertTrue(err <= 1e-5, "block feed vs steps: " + err);
  }
}
