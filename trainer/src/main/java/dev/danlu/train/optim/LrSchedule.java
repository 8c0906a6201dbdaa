package dev.danlu.train.optim;

/**
 * Learning-rate multipliers exactly as Hugging Face's {@code get_linear_schedule_with_warmup} and
 * {@code get_cosine_schedule_with_warmup} (num_cycles 0.5) compute them. {@code step} is the number
 * of scheduler steps already taken, so the very first optimizer update uses {@code factor(0)},
 * which is 0 during warmup, as with {@code LambdaLR}.
 */
public interface LrSchedule {

  /** The multiplier of the base learning rate for the update after {@code step} scheduler steps. */
  double factor(long step);

  /**
   * Hugging Face's {@code TrainingArguments.get_warmup_steps}: explicit warmup steps if positive,
   * else {@code ceil(totalSteps * warmupRatio)}.
   */
  static long warmupSteps(long totalSteps, double warmupRatio, long warmupStepsOverride) {
    return warmupStepsOverride > 0
        ? warmupStepsOverride
        : (long) Math.ceil(totalSteps * warmupRatio);
  }

  static LrSchedule linear(long warmup, long total) {
    return step -> {
      if (step < warmup) {
        return (double) step / Math.max(1, warmup);
      }
      return Math.max(0.0, (double) (total - step) / Math.max(1, total - warmup));
    };
  }

  static LrSchedule cosine(long warmup, long total) {
    return step -> {
      if (step < warmup) {
        return (double) step / Math.max(1, warmup);
      }
      double progress = (double) (step - warmup) / Math.max(1, total - warmup);
      return Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * 0.5 * 2.0 * progress)));
    };
  }

  static LrSchedule constant() {
    return step -> 1.0;
  }

  /**
   * {@code lr_scheduler_type} as in run_pt.sh / TrainingArguments: "linear", "cosine", "constant".
   */
  static LrSchedule byName(String type, long warmup, long total) {
    return switch (type) {
      case "linear" -> linear(warmup, total);
      case "cosine" -> cosine(warmup, total);
      case "constant" -> constant();
      default ->
          throw new IllegalArgumentException(
              "lr_scheduler_type '" + type + "' is not supported; use linear, cosine or constant");
    };
  }
}
