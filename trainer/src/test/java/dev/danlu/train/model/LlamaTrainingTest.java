package dev.danlu.train.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/** Properties of the float32 training path: fresh adapters, checkpointing, masks, padding. */
class LlamaTrainingTest {
  private final LlamaConfig c = TinyModels.config(null, 64);
  private final LlamaWeights w = LlamaWeights.random(c, 5, DataType.FLOAT);

  @Test
  void freshAdapterReproducesBaseLogitsExactly() {
    LoraConfig lc = TinyModels.lora(0.0);
    Batch b = TinyModels.batch(9, c.vocabSize(), 1, false);
    LlamaState base = TinyModels.state(c, b, null, false, DataType.FLOAT);
    double baseLoss = Llama.forward(w, null, base, b);
    LlamaState adapted = TinyModels.state(c, b, lc, false, DataType.FLOAT);
    double loss = Llama.forward(w, LoraAdapter.init(lc, w), adapted, b);
    // Bitwise on any CPU: both runs make the same base products with the same shapes, and the
    // LoRA term scaling·(x·Aᵀ)·Bᵀ with B = 0 adds exactly zero into them (gemm with beta = 1).
    assertArrayEquals(
        base.logits.reshape(-1).toFloatVector(), adapted.logits.reshape(-1).toFloatVector());
    assertEquals(baseLoss, loss);
  }

  @Test
  void gradientCheckpointingGivesIdenticalGradients() {
    LoraConfig lc = TinyModels.lora(0.1);
    Batch b = TinyModels.batch(9, c.vocabSize(), 2, true);
    LoraAdapter plain = TinyModels.trainedAdapter(w, lc, 3);
    LoraAdapter ckpt = TinyModels.trainedAdapter(w, lc, 3);
    LlamaState s1 = TinyModels.state(c, b, lc, false, DataType.FLOAT);
    LlamaState s2 = TinyModels.state(c, b, lc, true, DataType.FLOAT);
    double l1 = Llama.forward(w, plain, s1, b);
    Llama.backward(w, plain, s1, 1.0);
    double l2 = Llama.forward(w, ckpt, s2, b);
    Llama.backward(w, ckpt, s2, 1.0);
    // Bitwise on any CPU: checkpointing recomputes each layer's forward with the same calls on
    // the same shapes, and a BLAS call is deterministic for a given shape and thread count.
    assertEquals(l1, l2);
    List<LoraAdapter.NamedParam> p1 = plain.trainable();
    List<LoraAdapter.NamedParam> p2 = ckpt.trainable();
    for (int i = 0; i < p1.size(); i++) {
      assertArrayEquals(
          p1.get(i).grad().reshape(-1).toFloatVector(),
          p2.get(i).grad().reshape(-1).toFloatVector(),
          p1.get(i).name());
    }
  }

  @Test
  void rightPaddingDoesNotChangeRealTokens() {
    // row 0 alone (seq 5) must give the same logits as row 0 of a padded seq-7 batch
    int[] ids = {3, 9, 4, 17, 22};
    Batch alone = Batch.of(1, 5, ids, null);
    LlamaState s1 = new LlamaState(c, 1, 5, null, false, DataType.FLOAT);
    Llama.forward(w, null, s1, alone);
    int[] padded = {3, 9, 4, 17, 22, 0, 0};
    int[] mask = {1, 1, 1, 1, 1, 0, 0};
    LlamaState s2 = new LlamaState(c, 1, 7, null, false, DataType.FLOAT);
    Llama.forward(w, null, s2, Batch.of(1, 7, padded, mask));
    float[] a = s1.logits.reshape(-1).toFloatVector();
    float[] p =
        s2.logits
            .get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 5))
            .dup()
            .reshape(-1)
            .toFloatVector();
    assertArrayEquals(a, p, 1e-6f);
  }

  @Test
  void lossIsMeanOverNonIgnoredShiftedLabels() {
    Batch b = TinyModels.batch(6, c.vocabSize(), 4, false);
    LlamaState s = TinyModels.state(c, b, null, false, DataType.FLOAT);
    double loss = Llama.forward(w, null, s, b);
    // recompute from the logits independently: log_softmax on each row, HF's shift
    double sum = 0;
    int count = 0;
    float[][] logits = s.logits.toFloatMatrix();
    for (int bi = 0; bi < 2; bi++) {
      for (int t = 0; t + 1 < 6; t++) {
        int label = b.labels()[bi * 6 + t + 1];
        if (label == -100) {
          continue;
        }
        float[] row = logits[bi * 6 + t];
        double max = Double.NEGATIVE_INFINITY;
        for (float v : row) {
          max = Math.max(max, v);
        }
        double z = 0;
        for (float v : row) {
          z += Math.exp(v - max);
        }
        sum += max + Math.log(z) - row[label];
        count++;
      }
    }
    assertEquals(count, s.tokenCount());
    assertEquals(sum / count, loss, 1e-6);
  }

  @Test
  void dropoutMasksDependOnSampleIdNotBatchPosition() {
    LoraConfig lc = TinyModels.lora(0.5);
    int seq = 6;
    int width = c.hiddenSize();
    // The masks themselves are integers from a counter RNG: bitwise equality holds on any CPU.
    // Sample 12 as the second row of a batch and alone draws the same mask in every layer/module.
    for (int layer = 0; layer < c.numLayers(); layer++) {
      for (dev.danlu.train.lora.LoraModule m : dev.danlu.train.lora.LoraModule.values()) {
        byte[] pair = new byte[2 * seq * width];
        byte[] one = new byte[seq * width];
        dev.danlu.train.lora.LoraDropout.fillMask(
            pair, 2 * seq, width, 0.5, 7, 3, new long[] {11, 12}, seq, layer, m);
        dev.danlu.train.lora.LoraDropout.fillMask(
            one, seq, width, 0.5, 7, 3, new long[] {12}, seq, layer, m);
        assertArrayEquals(
            java.util.Arrays.copyOfRange(pair, seq * width, pair.length), one, layer + " " + m);
      }
    }

    LoraAdapter ad = TinyModels.trainedAdapter(w, lc, 6);
    Batch b = TinyModels.batch(seq, c.vocabSize(), 7, true);
    LlamaState s = TinyModels.state(c, b, lc, false, DataType.FLOAT);
    Llama.forward(w, ad, s, b);
    float[] both = s.logits.reshape(-1).toFloatVector();
    // the second sample alone, keeping its sample id 12, must get the same logits
    int[] ids = java.util.Arrays.copyOfRange(b.inputIds(), seq, 2 * seq);
    int[] mask = java.util.Arrays.copyOfRange(b.attentionMask(), seq, 2 * seq);
    Batch one = new Batch(1, seq, ids, mask, null, new long[] {12}, 3, true);
    LlamaState s1 = new LlamaState(c, 1, seq, lc, false, DataType.FLOAT);
    Llama.forward(w, ad, s1, one);
    float[] alone = s1.logits.reshape(-1).toFloatVector();
    float[] second = java.util.Arrays.copyOfRange(both, seq * c.vocabSize(), both.length);
    // Not bitwise: the products run over 12 rows in one case and 6 in the other, and OpenBLAS
    // blocks (and on some CPUs, e.g. OPENBLAS_CORETYPE=Haswell/Zen, accumulates) those shapes
    // differently, so the last bit may differ. Each product reduces at most K = 24 terms
    // (intermediate size); reordering a float32 sum of K terms moves it by at most
    // (K-1)·2^-24·Σ|terms| ≈ 1.4e-6·Σ|terms|. Through 2 layers, attention and the head this
    // stays well under 1e-5 of the largest logit, while a wrong mask moves logits by ~1e-1.
    float scale = maxAbs(alone);
    assertArrayEquals(second, alone, 1e-5f * scale);
    // another step draws other masks: far outside the tolerance
    Batch next = new Batch(1, seq, ids, mask, null, new long[] {12}, 4, true);
    Llama.forward(w, ad, s1, next);
    float[] other = s1.logits.reshape(-1).toFloatVector();
    float moved = 0;
    for (int i = 0; i < alone.length; i++) {
      moved = Math.max(moved, Math.abs(other[i] - alone[i]));
    }
    assertTrue(moved > 1e-2f * scale, "another step's masks moved logits by only " + moved);
  }

  private static float maxAbs(float[] a) {
    float m = 0;
    for (float v : a) {
      m = Math.max(m, Math.abs(v));
    }
    return m;
  }

  @Test
  void frozenWeightsGetNoGradientBuffersAndEmbedGradientsOnlyTouchUsedRows() {
    LoraConfig lc = TinyModels.lora(0.0);
    LoraAdapter ad = TinyModels.trainedAdapter(w, lc, 8);
    assertEquals(2 * 7 * 2 + 2, ad.trainable().size());
    long expected =
        2L * (4 * (16 + 16) + 4 * (16 + 8) * 2 + 4 * (16 + 16) + 2 * 4 * (16 + 24) + 4 * (24 + 16))
            + 2L * 40 * 16;
    assertEquals(expected, ad.numTrainable());
    Batch b = TinyModels.batch(6, c.vocabSize(), 9, false);
    LlamaState s = TinyModels.state(c, b, lc, false, DataType.FLOAT);
    Llama.forward(w, ad, s, b);
    Llama.backward(w, ad, s, 1.0);
    java.util.Set<Integer> used = new java.util.HashSet<>();
    for (int id : b.inputIds()) {
      used.add(id);
    }
    for (int row = 0; row < c.vocabSize(); row++) {
      double norm = ad.dEmbedTokens.getRow(row).norm2Number().doubleValue();
      if (used.contains(row)) {
        assertNotEquals(0.0, norm, "row " + row);
      } else {
        assertEquals(0.0, norm, "row " + row);
      }
    }
    assertTrue(Nd4j.getBackend().getClass().getSimpleName().contains("Cpu"));
  }
}
