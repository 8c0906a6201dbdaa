package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.Llama;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.zero.FlatParams;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The flat layout is ordered embed_tokens, layers 0..L-1, lm_head, so backward's "gradients at
 * depth >= d are final" hook always frees a suffix; and moving gradients region by region from the
 * hook yields exactly the flat gradients of a move after backward (which also proves the hook never
 * fires before backward is done with a tensor: a later contribution would be missing).
 */
class AdapterFlatTest {
  private static final int LAYERS = 3;
  private static final Pattern LAYER = Pattern.compile("layers\\.(\\d+)\\.");

  @Test
  void hookRegionsAreSuffixesAndMoveTheSameGradients() {
    check(false);
  }

  /** Recomputing a layer's forward inside backward must not move the hook. */
  @Test
  void sameWithGradientCheckpointing() {
    check(true);
  }

  private static void check(boolean checkpointing) {
    LlamaConfig c = new LlamaConfig(16, 24, LAYERS, 4, 2, 40, 1e-5, 1e4, null, false, 32);
    LlamaWeights w = LlamaWeights.random(c, 5, DataType.FLOAT);
    LoraAdapter ad =
        LoraAdapter.init(new LoraConfig(4, 8.0, 0.0, LoraConfig.allTargets(), true, true, 7), w);
    AdapterFlat af = new AdapterFlat(ad, 3, 4);
    List<FlatParams.Slot> slots = af.flat().slots();
    assertTrue(slots.get(0).name().contains("embed_tokens"), slots.get(0).name());
    assertTrue(slots.get(slots.size() - 1).name().contains("lm_head"));
    int prevLayer = -1;
    for (FlatParams.Slot s : slots.subList(1, slots.size() - 1)) {
      Matcher m = LAYER.matcher(s.name());
      assertTrue(m.find(), s.name());
      int l = Integer.parseInt(m.group(1));
      assertTrue(l >= prevLayer, "layer order at " + s.name());
      prevLayer = l;
    }

    int seq = 9;
    SplittableRandom rnd = new SplittableRandom(2);
    int[] ids = new int[seq];
    for (int t = 0; t < seq; t++) {
      ids[t] = rnd.nextInt(40);
    }
    Batch b = new Batch(1, seq, ids, null, ids, new long[] {1}, 1, true);
    LlamaState s = new LlamaState(c, 1, seq, ad.config, checkpointing, DataType.FLOAT);

    List<int[]> calls = new ArrayList<>();
    Llama.forward(w, ad, s, b);
    Llama.backward(w, ad, s, 1.0, d -> calls.add(new int[] {d, af.moveFinalGrads(d)}));
    af.moveGradsToFlat();
    float[] overlapped = af.flat().grads().clone();

    assertEquals(LAYERS + 2, calls.size());
    for (int i = 0; i < calls.size(); i++) {
      int d = calls.get(i)[0];
      int from = calls.get(i)[1];
      assertEquals(LAYERS - i, d, "depths arrive from lm_head down to embed_tokens");
      int expect = 0;
      for (int k = slots.size() - 1; k >= 0; k--) {
        boolean finalNow =
            k == slots.size() - 1 ? d <= LAYERS : k == 0 ? d <= -1 : layerOf(slots.get(k)) >= d;
        if (!finalNow) {
          expect = slots.get(k + 1).offset();
          break;
        }
      }
      assertEquals(expect, from, "final suffix after depth " + d);
    }

    // the same through direct gradients, as the recipe keeps them for the TCP ring
    AdapterFlat direct = new AdapterFlat(ad, 3, 4, true);
    assertTrue(direct.flat().directGrads());
    Llama.forward(w, ad, s, b);
    Llama.backward(w, ad, s, 1.0, d -> direct.moveFinalGrads(d));
    direct.moveGradsToFlat();
    float[] viaDirect = new float[direct.flat().padded()];
    direct.flat().gradFloats().get(0, viaDirect);
    assertArrayEquals(overlapped, viaDirect);

    java.util.Arrays.fill(af.flat().grads(), 0f);
    Llama.forward(w, ad, s, b);
    Llama.backward(w, ad, s, 1.0);
    af.moveGradsToFlat();
    assertArrayEquals(af.flat().grads(), overlapped);
    double sq = 0;
    for (float x : overlapped) {
      sq += x * x;
    }
    assertTrue(sq > 0, "backward produced gradients");
  }

  private static int layerOf(FlatParams.Slot s) {
    Matcher m = LAYER.matcher(s.name());
    assertTrue(m.find(), s.name());
    return Integer.parseInt(m.group(1));
  }
}
