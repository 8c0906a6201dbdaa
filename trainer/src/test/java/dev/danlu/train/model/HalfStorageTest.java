package dev.danlu.train.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.lora.LoraMerge;
import dev.danlu.train.lora.LoraModule;
import dev.danlu.train.tensor.HalfArrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Half-precision storage is "float32 math on rounded weights": a model whose frozen weights are
 * stored as HALF / BFLOAT16 and widened a layer at a time gives bit-identical logits, loss and
 * gradients to a float32 model whose weights were rounded to that dtype beforehand (built here
 * through the float-only rounding path, not through the 16-bit arrays).
 *
 * <p>Bitwise holds on any CPU: widening a 16-bit value to float32 is exact, so both models run the
 * same products on the same float32 values and shapes.
 */
class HalfStorageTest {
  enum Half {
    HALF(DataType.HALF),
    BFLOAT16(DataType.BFLOAT16);

    final DataType t;

    Half(DataType t) {
      this.t = t;
    }
  }

  private final LlamaConfig c = TinyModels.config(null, 64);
  private final LlamaWeights w32 = LlamaWeights.random(c, 5, DataType.FLOAT);

  /** w32 with every value rounded to {@code t}, all arrays float32. */
  private LlamaWeights rounded(DataType t) {
    LlamaWeights.Layer[] out = new LlamaWeights.Layer[c.numLayers()];
    for (int l = 0; l < out.length; l++) {
      LlamaWeights.Layer x = w32.layers()[l];
      out[l] =
          new LlamaWeights.Layer(
              r(x.inputNorm(), t),
              r(x.wq(), t),
              r(x.wk(), t),
              r(x.wv(), t),
              r(x.wo(), t),
              r(x.postAttentionNorm(), t),
              r(x.wGate(), t),
              r(x.wUp(), t),
              r(x.wDown(), t));
    }
    return new LlamaWeights(c, r(w32.embedTokens(), t), out, r(w32.norm(), t), r(w32.lmHead(), t));
  }

  private static INDArray r(INDArray a, DataType t) {
    float[] v = a.reshape(-1).toFloatVector();
    return LlamaWeights.fromFloats(HalfArrays.round(v, t), a.shape(), DataType.FLOAT);
  }

  @ParameterizedTest
  @EnumSource(Half.class)
  void storageHoldsSixteenBitProjectionsAndFloatNorms(Half h) {
    LlamaWeights wh = w32.withStorage(h.t);
    assertEquals(h.t, wh.storageType());
    assertEquals(DataType.FLOAT, wh.dataType(), "compute dtype");
    assertEquals(h.t, wh.embedTokens().dataType());
    assertEquals(h.t, wh.lmHead().dataType());
    assertEquals(DataType.FLOAT, wh.norm().dataType());
    for (LoraModule m : LoraModule.values()) {
      assertEquals(h.t, wh.layers()[1].linear(m).dataType(), m.name());
    }
    // widening is exact: the scratch holds exactly the rounded values
    LlamaWeights wr = rounded(h.t);
    for (int l = 0; l < c.numLayers(); l++) {
      for (LoraModule m : LoraModule.values()) {
        assertArrayEquals(
            wr.linear(l, m).reshape(-1).toFloatVector(),
            wh.linear(l, m).reshape(-1).toFloatVector(),
            l + " " + m);
      }
    }
    assertArrayEquals(
        wr.lmHead().reshape(-1).toFloatVector(), wh.lmHeadF32().reshape(-1).toFloatVector());
    assertArrayEquals(wr.norm().toFloatVector(), wh.norm().toFloatVector());
    assertNotEquals(
        w32.layers()[0].wq().getFloat(0), wr.layers()[0].wq().getFloat(0), "rounding is visible");
  }

  @ParameterizedTest
  @EnumSource(Half.class)
  void loraAndTrainedEmbeddingsMatchRoundedFloatModelBitForBit(Half h) {
    compare(h.t, TinyModels.lora(0.1), false);
    compare(h.t, TinyModels.lora(0.1), true);
  }

  @ParameterizedTest
  @EnumSource(Half.class)
  void frozenHalfEmbeddingAndHeadMatchBitForBit(Half h) {
    // LoRA only: embed_tokens is gathered from 16-bit rows, lm_head widened into the scratch
    LoraConfig lc = new LoraConfig(4, 8.0, 0.0, LoraConfig.allTargets(), false, false, 7);
    compare(h.t, lc, true);
  }

  private void compare(DataType t, LoraConfig lc, boolean checkpointing) {
    LlamaWeights wh = w32.withStorage(t);
    LlamaWeights wr = rounded(t);
    Batch b = TinyModels.batch(9, c.vocabSize(), 2, true);
    LoraAdapter ah = TinyModels.trainedAdapter(wh, lc, 3);
    LoraAdapter ar = TinyModels.trainedAdapter(wr, lc, 3);
    LlamaState sh = TinyModels.state(c, b, lc, checkpointing, DataType.FLOAT);
    LlamaState sr = TinyModels.state(c, b, lc, checkpointing, DataType.FLOAT);
    double lh = Llama.forward(wh, ah, sh, b);
    double lr = Llama.forward(wr, ar, sr, b);
    assertArrayEquals(sr.logits.reshape(-1).toFloatVector(), sh.logits.reshape(-1).toFloatVector());
    assertEquals(lr, lh, "loss");
    Llama.backward(wh, ah, sh, 1.0);
    Llama.backward(wr, ar, sr, 1.0);
    List<LoraAdapter.NamedParam> ph = ah.trainable();
    List<LoraAdapter.NamedParam> pr = ar.trainable();
    assertEquals(pr.size(), ph.size());
    for (int i = 0; i < ph.size(); i++) {
      assertEquals(DataType.FLOAT, ph.get(i).value().dataType(), "trainable stays float32");
      assertEquals(DataType.FLOAT, ph.get(i).grad().dataType());
      float[] g = ph.get(i).grad().reshape(-1).toFloatVector();
      assertArrayEquals(pr.get(i).grad().reshape(-1).toFloatVector(), g, ph.get(i).name());
      double norm = 0;
      for (float v : g) {
        norm += Math.abs(v);
      }
      assertTrue(norm > 0, ph.get(i).name() + " gradient is not all zero");
    }
    // each projection is widened once on the way up and once on the way down, except that the
    // last layer's are still in the scratch when backward starts unless a frozen lm_head (widened
    // once) took the space; the recompute under checkpointing is what its backward reuses
    long perLayer = LoraModule.values().length;
    long perPass = c.numLayers() * perLayer;
    long expected = lc.trainLmHead() ? 2 * perPass - perLayer : 2 * perPass + 1;
    assertEquals(expected, wh.upcasts(), "upcasts");
    long layerFloats = 0;
    for (LoraModule m : LoraModule.values()) {
      long[] s = LlamaWeights.linearShape(c, m);
      layerFloats += s[0] * s[1];
    }
    assertEquals(
        4 * Math.max(layerFloats, (long) c.vocabSize() * c.hiddenSize()), wh.scratchBytes());
  }

  @ParameterizedTest
  @EnumSource(Half.class)
  void inMemoryMergeKeepsHalfStorageRoundingTheSumOnce(Half h) {
    LlamaWeights wh = w32.withStorage(h.t);
    LlamaWeights wr = rounded(h.t);
    LoraConfig lc = new LoraConfig(4, 8.0, 0.0, LoraConfig.allTargets(), false, false, 7);
    LoraAdapter ad = TinyModels.trainedAdapter(wr, lc, 3);
    LlamaWeights mh = LoraMerge.merge(wh, ad);
    LlamaWeights mr = LoraMerge.merge(wr, ad);
    for (LoraModule m : LoraModule.values()) {
      assertEquals(h.t, mh.layers()[1].linear(m).dataType(), m.name());
      float[] want = HalfArrays.round(mr.layers()[1].linear(m).reshape(-1).toFloatVector(), h.t);
      assertArrayEquals(want, mh.linear(1, m).reshape(-1).toFloatVector(), m.name());
    }
    assertSame(wh.embedTokens(), mh.embedTokens(), "frozen embedding shared, still half");
  }

  @ParameterizedTest
  @EnumSource(Half.class)
  void storageHalvesAndScratchIsOneLayer(Half h) {
    LlamaWeights wh = w32.withStorage(h.t);
    long norms = 4L * c.hiddenSize() * (2L * c.numLayers() + 1);
    assertEquals(w32.storageBytes() - norms, 2 * (wh.storageBytes() - norms));
    assertEquals(0, wh.scratchBytes(), "no scratch before the first use");
  }

  @ParameterizedTest
  @EnumSource(Half.class)
  void tiedEmbeddingsStayTied(Half h) {
    LlamaConfig tc = new LlamaConfig(16, 24, 2, 4, 2, 40, 1e-5, 10000.0, null, true, 64);
    LlamaWeights wh = LlamaWeights.random(tc, 9, h.t);
    assertSame(wh.embedTokens(), wh.lmHead());
    assertEquals(h.t, wh.lmHead().dataType());
  }

  @ParameterizedTest
  @EnumSource(Half.class)
  void aSecondThreadIsRefusedInsteadOfSharingTheScratch(Half h) throws Exception {
    LlamaWeights wh = w32.withStorage(h.t);
    wh.linear(0, LoraModule.Q);
    AtomicReference<Throwable> err = new AtomicReference<>();
    Thread t =
        new Thread(
            () -> {
              try {
                wh.linear(1, LoraModule.Q);
              } catch (Throwable e) {
                err.set(e);
              }
            });
    t.start();
    t.join();
    assertTrue(err.get() instanceof IllegalStateException, String.valueOf(err.get()));
    assertTrue(err.get().getMessage().contains("one LlamaWeights per thread"));
    assertThrows(
        IllegalArgumentException.class,
        () -> HalfArrays.gatherRows(new int[] {40}, wh.embedTokens(), wh.norm()));
  }
}
