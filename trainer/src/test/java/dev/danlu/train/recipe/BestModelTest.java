package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * Hugging Face's semantics, step by step: EarlyStoppingCallback counts an evaluation as an
 * improvement only when it beats the best so far by more than the threshold (compared before the
 * Trainer updates the best), while the best model moves on any strict improvement.
 */
class BestModelTest {
  @Test
  void patienceCountsEvaluationsWithoutAnImprovementAboveTheThreshold() {
    BestModel b = new BestModel("eval_loss", false, 2, 0.05);
    assertTrue(b.onEvaluate(2.0, 10)); // first: best, counter 0
    assertEquals(0, b.counter());
    assertTrue(b.onEvaluate(1.97, 20)); // better, but by ≤ threshold: a new best, counter 1
    assertEquals(1, b.counter());
    assertEquals(20, b.bestStep());
    assertFalse(b.shouldStop());
    assertTrue(b.onEvaluate(1.80, 30)); // better by 0.17 > 0.05: counter back to 0
    assertEquals(0, b.counter());
    assertFalse(b.onEvaluate(1.85, 40)); // worse
    assertEquals(1, b.counter());
    assertFalse(b.shouldStop());
    assertFalse(b.onEvaluate(1.80, 50)); // equal is not better
    assertEquals(2, b.counter());
    assertTrue(b.shouldStop());
    assertEquals(30, b.bestStep());
    assertEquals(1.80, b.best());
  }

  /** HF's preconditions, refused when the config is loaded (before anything trains). */
  @Test
  void inconsistentKeysAreConfigErrors() {
    java.nio.file.Path p = java.nio.file.Path.of("x");
    String[][] bad = {
      {"early_stopping_patience=3", "needs load_best_model_at_end: true"},
      {"load_best_model_at_end=true", "need evaluations: set eval_steps > 0"},
      {"metric_for_best_model=accuracy", "'accuracy' is not computed"},
      {"early_stopping_threshold=-1", "early_stopping_threshold must be ≥ 0"}
    };
    for (String[] b : bad) {
      dev.danlu.train.config.ConfigException e =
          org.junit.jupiter.api.Assertions.assertThrows(
              dev.danlu.train.config.ConfigException.class, () -> TinyRun.config(p, p, p, b[0]));
      assertTrue(e.getMessage().contains(b[1]), b[0] + ": " + e.getMessage());
    }
    var c = TinyRun.config(p, p, p, "metric_for_best_model=perplexity");
    assertEquals("eval_perplexity", c.bestMetric());
    assertFalse(c.biggerIsBetter());
    assertTrue(TinyRun.config(p, p, p, "greater_is_better=true").biggerIsBetter());
  }

  @Test
  void greaterIsBetterAndNaNAndRestore() {
    BestModel b = new BestModel("eval_perplexity", true, 1, 0.0);
    assertTrue(b.onEvaluate(3.0, 1));
    assertFalse(b.onEvaluate(Double.NaN, 2)); // nothing evaluated: never an improvement
    assertTrue(b.shouldStop());
    BestModel c = new BestModel("eval_perplexity", true, 1, 0.0);
    c.restore(b.state());
    assertEquals(1, c.bestStep());
    assertEquals(1, c.counter());
    assertTrue(c.shouldStop());
    assertTrue(c.onEvaluate(4.0, 3));
    assertEquals(Math.exp(0.5), c.metricOf(0.5), 0.0);
    BestModel d = new BestModel("eval_loss", false, 1, 0.0);
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> d.restore(b.state()));
    assertTrue(e.getMessage().contains("metric_for_best_model"), e.getMessage());
  }
}
