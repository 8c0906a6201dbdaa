package dev.danlu.train.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.model.Batch;
import dev.danlu.train.model.Llama;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

class VocabResizeTest {
  private final LlamaConfig c = new LlamaConfig(32, 48, 1, 4, 4, 40, 1e-5, 10000, null, false, 64);
  private final LlamaWeights w = LlamaWeights.random(c, 2, DataType.FLOAT);

  @Test
  void normalRowsFollowHfInitAndOldRowsAreKept() {
    INDArray big = VocabResize.resize(w.embedTokens(), 2040, VocabResize.Init.NORMAL, 3, 0);
    assertEquals(w.embedTokens(), big.get(interval(0, 40)));
    INDArray fresh = big.get(interval(40, 2040));
    assertEquals(0.0, fresh.meanNumber().doubleValue(), 0.001);
    assertEquals(0.02, fresh.stdNumber().doubleValue(), 0.0005);
    // keyed by row, not by the old size: growing 40 -> 60 gives the same row 50 as 40 -> 2040
    INDArray small = VocabResize.resize(w.embedTokens(), 60, VocabResize.Init.NORMAL, 3, 0);
    assertEquals(big.getRow(50), small.getRow(50));
  }

  @Test
  void meanRowsEqualTheMeanOfOldRows() {
    INDArray r = VocabResize.resize(w.embedTokens(), 42, VocabResize.Init.MEAN, 3, 0);
    INDArray mean = w.embedTokens().mean(0);
    assertTrue(r.getRow(41).equalsWithEps(mean, 1e-7));
  }

  @Test
  void resizedAdapterTrainsOnNewTokens() {
    LoraConfig lc = new LoraConfig(4, 8, 0, LoraConfig.allTargets(), true, true, 1);
    LoraAdapter ad = LoraAdapter.init(lc, w, 50, VocabResize.Init.NORMAL);
    assertEquals(50, ad.vocabSize());
    int[] ids = {1, 45, 7, 49, 3, 44};
    LlamaState s = new LlamaState(c.withVocabSize(50), 1, 6, lc, false, DataType.FLOAT);
    double loss = Llama.forward(w, ad, s, new Batch(1, 6, ids, null, ids, null, 0, true));
    assertTrue(Double.isFinite(loss));
    Llama.backward(w, ad, s, 1.0);
    assertTrue(ad.dEmbedTokens.getRow(45).norm2Number().doubleValue() > 0);
    assertTrue(ad.dLmHead.getRow(49).norm2Number().doubleValue() > 0);
    LoraConfig frozenHead = new LoraConfig(4, 8, 0, LoraConfig.allTargets(), true, false, 1);
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> LoraAdapter.init(frozenHead, w, 50, VocabResize.Init.NORMAL));
    assertTrue(e.getMessage().contains("modules_to_save"), e.getMessage());
  }

  private static org.nd4j.linalg.indexing.INDArrayIndex interval(int a, int b) {
    return org.nd4j.linalg.indexing.NDArrayIndex.interval(a, b);
  }
}
