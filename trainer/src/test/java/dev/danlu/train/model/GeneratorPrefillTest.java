package dev.danlu.train.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.testkit.Floats;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The block prefill ({@link Generator#feed}, whose attention is the tiled kernel's suffix queries
 * over the cache) against feeding the same tokens one {@link Generator#step} at a time (scalar
 * attention over the cache): a prompt longer than {@link Generator#PREFILL_BLOCK} and than the
 * forward's key tile, so the blocks after the first attend over cached keys and rows span two key
 * tiles; GQA, three layers.
 */
class GeneratorPrefillTest {
  private static final int LEN = 1100;

  private static LlamaWeights model() {
    // 3 layers, 4 heads sharing 2 kv heads of 8, max_position_embeddings above the prompt
    LlamaConfig c = new LlamaConfig(32, 48, 3, 4, 2, 50, 1e-5, 10000.0, null, false, 2048);
    LlamaWeights w = LlamaWeights.random(c, 11, DataType.FLOAT);
    for (LlamaWeights.Layer l : w.layers()) {
      l.wq().muli(4); // peaked attention, so that it decides the logits
      l.wk().muli(4);
    }
    return w;
  }

  private static int[] prompt(int vocab) {
    SplittableRandom r = new SplittableRandom(5);
    int[] ids = new int[LEN];
    for (int i = 0; i < LEN; i++) {
      ids[i] = r.nextInt(vocab);
    }
    return ids;
  }

  @Test
  void blockPrefillEqualsTokenByTokenSteps() {
    LlamaWeights w = model();
    int[] ids = prompt(w.config().vocabSize());
    Generator stepped = new Generator(w, LEN + 1);
    float[] byStep = null;
    for (int pos = 0; pos < LEN; pos++) {
      byStep = stepped.step(ids[pos], pos);
    }
    // one block of all 1100 tokens, and the generate() split (512, 512, 76)
    Generator whole = new Generator(w, LEN + 1);
    float[] oneBlock = whole.feed(ids, 0, LEN, 0);
    Generator chunked = new Generator(w, LEN + 1);
    float[] blocks = null;
    for (int from = 0; from < LEN; from += Generator.PREFILL_BLOCK) {
      blocks = chunked.feed(ids, from, Math.min(LEN, from + Generator.PREFILL_BLOCK), from);
    }
    // float32 sums over up to 1100 keys and 48-wide rows in other orders, through 3 layers
    // (measured 1.0e-7 of the largest logit)
    double e1 = Floats.maxAbsDiff(oneBlock, byStep) / Floats.maxAbs(byStep);
    double e2 = Floats.maxAbsDiff(blocks, byStep) / Floats.maxAbs(byStep);
    assertTrue(e1 <= 1e-5, "one block vs steps: " + e1);
    assertTrue(e2 <= 1e-5, "512-token blocks vs steps: " + e2);
    // and the caches the prefills left behind serve the next step alike
    int next = 7;
    float[] afterSteps = stepped.step(next, LEN);
    float[] afterBlocks = chunked.step(next, LEN);
    double e3 = Floats.maxAbsDiff(afterBlocks, afterSteps) / Floats.maxAbs(afterSteps);
    assertTrue(e3 <= 1e-5, "step after the prefill: " + e3);
  }

  @Test
  void generateGreedyPrefillsInBlocksAndMatchesSteps() {
    LlamaWeights w = model();
    int[] ids = java.util.Arrays.copyOf(prompt(w.config().vocabSize()), 600);
    int[] byGenerate = new Generator(w, 620).generate(ids, 12, new Sampler(0, 1, 0));
    Generator g = new Generator(w, 620);
    float[] logits = null;
    for (int pos = 0; pos < ids.length; pos++) {
      logits = g.step(ids[pos], pos);
    }
    int[] bySteps = new int[12];
    for (int i = 0; i < 12; i++) {
      bySteps[i] = argmax(logits);
      logits = g.step(bySteps[i], ids.length + i);
    }
    assertArrayEquals(bySteps, byGenerate);
  }

  private static int argmax(float[] x) {
    int best = 0;
    for (int i = 1; i < x.length; i++) {
      if (x[i] > x[best]) {
        best = i;
      }
    }
    return best;
  }
}
