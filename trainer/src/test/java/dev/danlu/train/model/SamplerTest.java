package dev.danlu.train.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Top-k and the repetition penalty against small hand-computed cases. */
class SamplerTest {
  @Test
  void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOfSeenTokensOnce() {
    float[] logits = {2.0f, 1.5f, -1.0f, 0.5f, 0.0f};
    // token 0 twice: penalised once; 4 has logit 0 and stays 0; 1 and 3 unseen
    float[] got = Sampler.penalize(logits, new int[] {0, 2, 0, 4, 99}, 4, 2.0);
    assertArrayEquals(new float[] {1.0f, 1.5f, -2.0f, 0.5f, 0.0f}, got);
    assertArrayEquals(new float[] {2.0f, 1.5f, -1.0f, 0.5f, 0.0f}, logits, "input untouched");
  }

  @Test
  void greedyWithPenaltyChangesTheArgmax() {
    float[] logits = {2.0f, 1.5f, -1.0f};
    int[] context = {0};
    assertEquals(0, new Sampler(0, 1, 0).next(logits, context, 1), "no penalty: argmax 0");
    assertEquals(0, new Sampler(0, 1, 0, 1.1, 0).next(logits, context, 1), "2/1.1 > 1.5");
    assertEquals(1, new Sampler(0, 1, 0, 1.5, 0).next(logits, context, 1), "2/1.5 < 1.5");
    // an empty context leaves the logits alone
    assertEquals(0, new Sampler(0, 1, 0, 1.5, 0).next(logits, context, 0));
  }

  @Test
  void penaltyOnANegativeLogitPushesItFurtherDown() {
    // ids 0 and 1 are -1 and -1.2; seeing 0 makes it -1.3 < -1.2
    float[] logits = {-1.0f, -1.2f};
    assertEquals(1, new Sampler(0, 1, 0, 1.3, 0).next(logits, new int[] {0}, 1));
  }

  @Test
  void topKOneIsGreedyWhateverTheTemperature() {
    float[] logits = {0.1f, 3.0f, 2.9f, -4f};
    Sampler s = new Sampler(5.0, 1.0, 1, 1.0, 42);
    for (int i = 0; i < 200; i++) {
      assertEquals(1, s.next(logits));
    }
  }

  @Test
  void topKTwoDrawsOnlyTheTwoBestInTheirSoftmaxRatio() {
    // top-2 of {3, 2, 1, 0} at temperature 1: p(0) = e^3 / (e^3 + e^2) = e / (e + 1) = 0.7311
    float[] logits = {3f, 2f, 1f, 0f};
    Sampler s = new Sampler(1.0, 1.0, 2, 1.0, 7);
    int[] count = new int[4];
    int n = 20000;
    for (int i = 0; i < n; i++) {
      count[s.next(logits)]++;
    }
    assertEquals(0, count[2] + count[3], "only the top 2");
    double p0 = (double) count[0] / n;
    // binomial sd = sqrt(0.7311 * 0.2689 / 20000) = 0.0031; 4 sd
    assertEquals(Math.E / (Math.E + 1), p0, 0.0125, "p(0) = " + p0);
  }

  @Test
  void topKKeepsTiesAtTheBoundaryAsHuggingFaceDoes() {
    // HF removes scores < the k-th largest: with k = 2 all three 1.0 logits stay
    float[] logits = {1f, 1f, 1f, 0f};
    Sampler s = new Sampler(1.0, 1.0, 2, 1.0, 3);
    boolean[] seen = new boolean[4];
    for (int i = 0; i < 3000; i++) {
      seen[s.next(logits)] = true;
    }
    assertArrayEquals(new boolean[] {true, true, true, false}, seen);
  }

  @Test
  void topKThenTopP() {
    // top-3 of {ln 5, ln 3, ln 2, ln 10 - 100}: probabilities 0.5, 0.3, 0.2; top-p 0.7 keeps 0, 1
    float[] logits = {
      (float) Math.log(5), (float) Math.log(3), (float) Math.log(2), (float) Math.log(10) - 100
    };
    Sampler s = new Sampler(1.0, 0.7, 3, 1.0, 11);
    int[] count = new int[4];
    for (int i = 0; i < 5000; i++) {
      count[s.next(logits)]++;
    }
    assertEquals(0, count[2] + count[3]);
    assertTrue(count[0] > count[1] && count[1] > 0, java.util.Arrays.toString(count));
  }

  @Test
  void aFixedSeedGivesTheSameDraws() {
    float[] logits = {0.3f, 0.2f, 0.1f, 0.0f, -0.1f};
    int[] context = {0, 1};
    Sampler a = new Sampler(0.8, 0.9, 4, 1.1, 123);
    Sampler b = new Sampler(0.8, 0.9, 4, 1.1, 123);
    for (int i = 0; i < 100; i++) {
      assertEquals(a.next(logits, context, 2), b.next(logits, context, 2));
    }
  }

  @Test
  void theOldConstructorDrawsAsBefore() {
    // no top-k and penalty 1 must not change a single draw of the three-argument sampler
    float[] logits = {0.5f, 0.4f, 0.3f, 0.2f, 0.1f, 0f};
    Sampler old = new Sampler(0.9, 0.9, 5);
    Sampler same = new Sampler(0.9, 0.9, 0, 1.0, 5);
    for (int i = 0; i < 200; i++) {
      assertEquals(old.next(logits), same.next(logits, new int[] {0, 1, 2}, 3));
    }
  }

  @Test
  void badSettingsAreRefused() {
    assertThrows(IllegalArgumentException.class, () -> new Sampler(1, 1, -1, 1.0, 0));
    assertThrows(IllegalArgumentException.class, () -> new Sampler(1, 1, 0, 0.0, 0));
    assertThrows(IllegalArgumentException.class, () -> new Sampler(1, 1, 0, Double.NaN, 0));
  }
}
