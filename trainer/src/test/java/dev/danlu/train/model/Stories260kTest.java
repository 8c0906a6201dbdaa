package dev.danlu.train.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.danlu.data.tokenizer.TextTokenizer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Acceptance: the real stories260K model (GQA, tied embeddings) generates from BOS exactly the
 * published llama2.c greedy text, and the batched training forward agrees with the cached
 * generation path on the same tokens.
 */
class Stories260kTest {
  static Path modelDir() {
    return dev.danlu.testkit.Prereq.shared("fixtures/stories260K");
  }

  @Test
  void greedyFromBosMatchesLlama2c() throws Exception {
    Path dir = modelDir();
    LlamaWeights w = HfLlama.load(dir, DataType.FLOAT);
    String expected =
        Files.readString(dir.resolve("expected-greedy-from-bos.txt"), StandardCharsets.UTF_8);
    try (TextTokenizer tok = TextTokenizer.load(dir.resolve("tokenizer.model"))) {
      // llama2.c `run -t 0 -n 256`: forwards positions 0..255 (BOS at 0) and prints the 256
      // tokens sampled after them, stopping if it samples BOS
      Generator g = new Generator(w, 256);
      int[] out =
          g.generate(new int[] {tok.bosId()}, 256, new Sampler(0, 1, 0), tok.bosId(), tok.eosId());
      assertEquals(expected, tok.decode(out) + "\n");
    }
  }

  @Test
  void batchedForwardAgreesWithCachedGeneration() throws Exception {
    LlamaWeights w = HfLlama.load(modelDir(), DataType.FLOAT);
    int[] ids = {1, 403, 407, 261, 378, 27, 18, 275, 290, 300, 357, 391};
    Generator g = new Generator(w, ids.length);
    LlamaState s = new LlamaState(w.config(), 1, ids.length, null, false, DataType.FLOAT);
    Llama.forward(w, null, s, Batch.of(1, ids.length, ids, null));
    float[][] batched = s.logits.toFloatMatrix();
    for (int t = 0; t < ids.length; t++) {
      assertArrayEquals(batched[t], g.step(ids[t], t), 2e-5f, "position " + t);
    }
  }
}
