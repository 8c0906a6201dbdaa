package dev.danlu.train.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.checkpoint.VocabResize;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.Llama;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

class ResizedAdapterTest {
  private final LlamaConfig c = new LlamaConfig(32, 48, 1, 4, 4, 40, 1e-5, 10000, null, false, 64);
  private final LlamaWeights w = LlamaWeights.random(c, 2, DataType.FLOAT);

  @Test
  void resizedCopiesKeepOldRowsAndDrawIndependentNewRows() {
    LoraConfig lc = new LoraConfig(4, 8, 0, LoraConfig.allTargets(), true, true, 1);
    LoraAdapter ad = LoraAdapter.init(lc, w, 1040, VocabResize.Init.NORMAL);
    assertEquals(w.embedTokens(), ad.embedTokens.get(interval(0, 40)));
    assertEquals(w.lmHead(), ad.lmHead.get(interval(0, 40)));
    INDArray fresh = ad.embedTokens.get(interval(40, 1040));
    assertEquals(0.0, fresh.meanNumber().doubleValue(), 0.002);
    assertEquals(0.02, fresh.stdNumber().doubleValue(), 0.001);
    assertTrue(!ad.embedTokens.getRow(500).equals(ad.lmHead.getRow(500)));
    LoraAdapter mean = LoraAdapter.init(lc, w, 42, VocabResize.Init.MEAN);
    assertTrue(mean.embedTokens.getRow(41).equalsWithEps(w.embedTokens().mean(0), 1e-6));
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
