package dev.danlu.train.optim;

/**
 * Dynamic fp16 loss scaling with DeepSpeed's semantics ({@code
 * deepspeed/runtime/fp16/loss_scaler.py}, {@code DynamicLossScaler.update_scale} with
 * consecutive_hysteresis=False), defaults as in the reference run: initial scale 2^16, window 100,
 * hysteresis 2, min scale 1e-10, factor 2.
 *
 * <p>On an overflowing step (the step itself is skipped by the caller): if the hysteresis budget is
 * down to 1 (or hysteresis is 1), the scale is divided by the factor (not below the minimum; at the
 * minimum already, training cannot continue and this throws); otherwise the budget drops by one and
 * the scale stays. Either way the overflow iteration is remembered. On a good step: when {@code
 * (iter - lastOverflowIter) % window == 0}, the scale is multiplied by the factor and the
 * hysteresis budget refilled. The iteration counter advances on every call, overflow or not. So
 * with hysteresis 2 the first overflow only spends the budget, the second halves the scale, and the
 * budget returns only when the scale next grows.
 */
public final class DynamicLossScaler {
  private final double scaleFactor;
  private final long scaleWindow;
  private final double minScale;
  private final int hysteresis;

  private double scale;
  private long iter;
  private long lastOverflowIter = -1;
  private int hysteresisLeft;

  public DynamicLossScaler(
      double initialScale, double scaleFactor, long scaleWindow, int hysteresis, double minScale) {
    this.scale = initialScale;
    this.scaleFactor = scaleFactor;
    this.scaleWindow = scaleWindow;
    this.hysteresis = hysteresis;
    this.hysteresisLeft = hysteresis;
    this.minScale = minScale;
  }

  /**
   * DeepSpeed fp16 config of the reference scripts: 2^16, factor 2, window 100, hysteresis 2, min
   * 1e-10.
   */
  public static DynamicLossScaler deepSpeedDefaults() {
    return new DynamicLossScaler(65536.0, 2.0, 100, 2, 1e-10);
  }

  /** A scaler that never changes scale 1: for fp32/bf16 training, where no scaling is needed. */
  public static DynamicLossScaler disabled() {
    return new DynamicLossScaler(1.0, 1.0, Long.MAX_VALUE, 1, 1.0);
  }

  public double scale() {
    return scale;
  }

  /** False for {@link #disabled()} (factor 1): the scale is fixed at 1 and means nothing. */
  public boolean enabled() {
    return scaleFactor != 1.0;
  }

  public void update(boolean overflow) {
    if (overflow) {
      if (hysteresis == 1 || hysteresisLeft == 1) {
        if (scale == minScale && scaleFactor != 1.0) {
          throw new IllegalStateException(
              "loss scale already at its minimum "
                  + minScale
                  + " and gradients still overflow;"
                  + " the model diverged (lower the learning rate or use bf16/fp32)");
        }
        scale = Math.max(scale / scaleFactor, minScale);
      } else {
        hysteresisLeft--;
      }
      lastOverflowIter = iter;
    } else if ((iter - lastOverflowIter) % scaleWindow == 0) {
      hysteresisLeft = hysteresis;
      scale *= scaleFactor;
    }
    iter++;
  }

  /** Everything needed to resume: (scale, iter, lastOverflowIter, hysteresisLeft). */
  public double[] state() {
    return new double[] {scale, iter, lastOverflowIter, hysteresisLeft};
  }

  public void restore(double[] s) {
    scale = s[0];
    iter = (long) s[1];
    lastOverflowIter = (long) s[2];
    hysteresisLeft = (int) s[3];
  }

  public int hysteresisLeft() {
    return hysteresisLeft;
  }
}
