package dev.danlu.train.recipe;

import dev.danlu.train.checkpoint.TrainerState;
import dev.danlu.train.config.TrainConfig;

/**
 * Best model and early stopping with Hugging Face's semantics: after each evaluation the
 * EarlyStoppingCallback compares the metric with the best one <em>so far</em> (an improvement
 * counts only when it is better by more than {@code early_stopping_threshold}; otherwise the
 * counter grows, and training stops when it reaches {@code early_stopping_patience}); then the
 * Trainer records a new best whenever the metric is strictly better (no threshold), whose
 * checkpoint becomes the final model under {@code load_best_model_at_end}. The state is part of
 * every checkpoint ({@link TrainerState.Best}), so a resumed run stops where an uninterrupted one
 * does.
 */
final class BestModel {
  private final String metric;
  private final boolean greaterIsBetter;
  private final int patience;
  private final double threshold;
  private Double best;
  private long bestStep;
  private int counter;

  BestModel(String metric, boolean greaterIsBetter, int patience, double threshold) {
    this.metric = metric;
    this.greaterIsBetter = greaterIsBetter;
    this.patience = patience;
    this.threshold = threshold;
  }

  /** Null when the config asks for neither a best model nor early stopping. */
  static BestModel of(TrainConfig c) {
    if (!c.loadBestModelAtEnd() && c.earlyStoppingPatience() <= 0) {
      return null;
    }
    return new BestModel(
        c.bestMetric(), c.biggerIsBetter(), c.earlyStoppingPatience(), c.earlyStoppingThreshold());
  }

  String metric() {
    return metric;
  }

  /** The configured metric from an evaluation's mean loss per token. */
  double metricOf(double evalLoss) {
    return metric.equals("eval_perplexity") ? Math.exp(evalLoss) : evalLoss;
  }

  /**
   * Takes one evaluation at {@code step}; returns whether it is a new best (whose checkpoint must
   * then be written at this step). A NaN metric (nothing to evaluate) is never an improvement.
   */
  boolean onEvaluate(double value, long step) {
    // EarlyStoppingCallback.check_metric_value: against the best before this evaluation
    boolean improvedEnough =
        best == null
            || (better(value, best) && Math.abs(value - best) > threshold && !Double.isNaN(value));
    counter = improvedEnough ? 0 : counter + 1;
    // Trainer._determine_best_metric: strictly better, no threshold
    boolean newBest = !Double.isNaN(value) && (best == null || better(value, best));
    if (newBest) {
      best = value;
      bestStep = step;
    }
    return newBest;
  }

  private boolean better(double a, double b) {
    return greaterIsBetter ? a > b : a < b;
  }

  /** Early stopping's verdict after the latest evaluation. */
  boolean shouldStop() {
    return patience > 0 && counter >= patience;
  }

  int counter() {
    return counter;
  }

  /** The step of the best checkpoint, 0 before any evaluation with a metric. */
  long bestStep() {
    return bestStep;
  }

  Double best() {
    return best;
  }

  TrainerState.Best state() {
    return new TrainerState.Best(metric, best, bestStep, counter);
  }

  /** Continues from a checkpoint's state (absent: a checkpoint written before any evaluation). */
  void restore(TrainerState.Best st) {
    if (st == null) {
      return;
    }
    if (!metric.equals(st.metric())) {
      throw new IllegalStateException(
          "the checkpoint's best model was chosen by "
              + st.metric()
              + " but metric_for_best_model is now "
              + metric
              + ": keep the metric to resume, or start in a new output_dir");
    }
    best = st.bestMetric();
    bestStep = st.bestStep();
    counter = st.patienceCounter();
  }
}
