package dev.danlu.train.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.testkit.Floats;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The whole model with the tiled attention kernel equals it with the naive one: logits, loss and
 * every LoRA / embedding gradient, on a batch with right padding, packed segments (restarting
 * rotary positions), GQA and LoRA dropout, with and without gradient checkpointing; and a tiled
 * state holds no [seq, seq] arrays.
 */
class TiledModelTest {
  private final LlamaConfig c = TinyModels.config(null, 512);
  private final LlamaWeights w = LlamaWeights.random(c, 8, DataType.FLOAT);
  private final LoraConfig lc = TinyModels.lora(0.1);

  private Batch batch(int seq) {
    SplittableRandom r = new SplittableRandom(9);
    int n = 2 * seq;
    int[] ids = new int[n];
    int[] mask = new int[n];
    int[] labels = new int[n];
    int[] seg = new int[n];
    for (int i = 0; i < n; i++) {
      int t = i % seq;
      boolean pad = i >= seq && t >= seq - 37;
      ids[i] = pad ? 0 : r.nextInt(c.vocabSize());
      mask[i] = pad ? 0 : 1;
      labels[i] = pad ? -100 : ids[i];
      // row 0: three examples packed; row 1: one example, right-padded
      seg[i] = i < seq ? (t < 90 ? 1 : t < 230 ? 2 : 3) : (pad ? 0 : 1);
    }
    return new Batch(2, seq, ids, mask, labels, new long[] {5, 6}, 2, true, seg);
  }

  private record Run(double loss, float[] logits, List<float[]> grads) {}

  private Run run(AttentionImpl attn, boolean ckpt, Batch b) {
    LoraAdapter ad = TinyModels.trainedAdapter(w, lc, 3);
    LlamaState s = new LlamaState(c, b.batch(), b.seq(), lc, ckpt, DataType.FLOAT, attn);
    assertEquals(attn == AttentionImpl.TILED, s.tiled);
    double loss = Llama.forward(w, ad, s, b);
    float[] logits = s.logits.dup().data().asFloat();
    Llama.backward(w, ad, s, 1.0);
    List<float[]> grads = new ArrayList<>();
    for (LoraAdapter.NamedParam p : ad.trainable()) {
      grads.add(p.grad().dup().data().asFloat());
    }
    return new Run(loss, logits, grads);
  }

  @Test
  void tiledModelEqualsNaiveModel() {
    Batch b = batch(333);
    Run naive = run(AttentionImpl.EAGER, false, b);
    for (boolean ckpt : new boolean[] {false, true}) {
      Run tiled = run(AttentionImpl.TILED, ckpt, b);
      assertEquals(naive.loss, tiled.loss, 1e-5 * naive.loss);
      double e = Floats.maxAbsDiff(tiled.logits, naive.logits) / Floats.maxAbs(naive.logits);
      assertTrue(e <= 1e-5, "logits: " + e);
      for (int i = 0; i < naive.grads.size(); i++) {
        float[] g = naive.grads.get(i);
        double ge = Floats.maxAbsDiff(tiled.grads.get(i), g) / Math.max(Floats.maxAbs(g), 1e-30);
        // the 1e-5 of the largest entry (measured: logits 2.4e-7, gradients ≤ 5.8e-7)
        assertTrue(ge <= 1e-5, "gradient " + i + " (checkpointing " + ckpt + "): " + ge);
      }
    }
  }

  @Test
  void autoPicksTiledAboveTheThresholdAndHoldsNoSeqSquaredArrays() {
    int seq = AttentionImpl.AUTO_TILED_ABOVE + 1;
    LlamaState s = new LlamaState(c, 1, seq, null, false, DataType.FLOAT);
    assertTrue(s.tiled);
    assertEquals(null, s.acts[0].probs);
    assertEquals(null, s.dProbs3);
    assertFalse(new LlamaState(c, 1, 64, null, false, DataType.FLOAT).tiled);
    assertEquals(AttentionImpl.TILED, AttentionImpl.parse("Tiled"));
  }
}
