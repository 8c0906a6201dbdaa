package dev.danlu.train.model;

/**
 * The reference's NTK-aware rotary scaling (Chinese-LLaMA-Alpaca-2
 * scripts/attn_and_long_ctx_patches.py, {@code apply_ntk_scaling_patch(alpha)}): a fixed {@code
 * alpha} raises the rotary base to {@code base · alpha^(d/(d-2))} at every length; {@code auto}
 * keeps the base up to {@code max_position_embeddings} and beyond it uses {@code alpha = (seq_len /
 * (max_position_embeddings / 2) − 1) · coefficient}, recomputed for the current length. Positions
 * are still divided by a linear rope_scaling factor (PI) when the config has one.
 *
 * @param auto whether alpha follows the sequence length
 * @param alpha the fixed alpha (ignored when auto); 1 = no change
 * @param autoCoeff the reference's AUTO_COEFF (1.0 there)
 */
public record NtkAlpha(boolean auto, double alpha, double autoCoeff) {
  /** No NTK scaling (alpha 1). */
  public static final NtkAlpha NONE = new NtkAlpha(false, 1.0, 1.0);

  /** {@code alpha = auto} with the reference's coefficient 1.0. */
  public static final NtkAlpha AUTO = new NtkAlpha(true, 1.0, 1.0);

  public NtkAlpha {
    if (!auto && !(alpha > 0 && Double.isFinite(alpha))) {
      throw new IllegalArgumentException("ntk alpha must be a positive number, got " + alpha);
    }
    if (!(autoCoeff > 0 && Double.isFinite(autoCoeff))) {
      throw new IllegalArgumentException("ntk auto coefficient must be positive, got " + autoCoeff);
    }
  }

  /** A fixed alpha. */
  public static NtkAlpha fixed(double alpha) {
    return new NtkAlpha(false, alpha, 1.0);
  }

  /**
   * Parses {@code auto}, a number ({@code 1} = none), or {@code none}/empty/null; what {@code
   * --ntk-alpha} and the {@code ntk_alpha} key accept. The error names {@code what}.
   */
  public static NtkAlpha parse(String s, String what) {
    if (s == null || s.isBlank() || s.trim().equalsIgnoreCase("none")) {
      return NONE;
    }
    if (s.trim().equalsIgnoreCase("auto")) {
      return AUTO;
    }
    double a;
    try {
      a = Double.parseDouble(s.trim());
    } catch (NumberFormatException e) {
      a = Double.NaN;
    }
    if (!(a > 0 && Double.isFinite(a))) {
      throw new IllegalArgumentException(
          what + " '" + s + "' must be auto, none or a positive number (e.g. 2.0)");
    }
    return fixed(a);
  }

  /** Whether this changes nothing (a fixed alpha of 1). */
  public boolean isNone() {
    return !auto && alpha == 1.0;
  }

  /**
   * The rotary base for a sequence of {@code seqLen} tokens: {@code theta · alpha^(d/(d-2))} with
   * the fixed alpha, or in auto mode the plain theta up to {@code maxPos} tokens and the length's
   * alpha beyond.
   */
  public double base(double theta, int headDim, int seqLen, int maxPos) {
    double a;
    if (auto) {
      if (seqLen <= maxPos) {
        return theta;
      }
      a = ((double) seqLen / (maxPos / 2.0) - 1) * autoCoeff;
    } else {
      a = alpha;
    }
    return theta * Math.pow(a, (double) headDim / (headDim - 2));
  }

  @Override
  public String toString() {
    return auto ? (autoCoeff == 1.0 ? "auto" : "auto×" + autoCoeff) : Double.toString(alpha);
  }
}
