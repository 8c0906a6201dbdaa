package dev.danlu.train.optim;

/**
 * AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization") with PyTorch's {@code
 * torch.optim.AdamW} semantics, as one loop over a flat shard (llm.c's {@code gpt2_update}).
 *
 * <pre>
 *   θ ← θ · (1 − lr·λ)                         decoupled weight decay (not added to the gradient)
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   θ ← θ − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)     ε outside the square root
 * </pre>
 *
 * The float operations follow PyTorch's single-tensor implementation in the same order (bias
 * corrections and step size in double, element math in float), so results agree with a committed
 * PyTorch fixture to within an ulp or two.
 *
 * @param beta1 Hugging Face default 0.9
 * @param beta2 Hugging Face default 0.999
 * @param eps Hugging Face default 1e-8
 */
public record AdamW(double beta1, double beta2, double eps) {

  public static AdamW huggingFaceDefaults() {
    return new AdamW(0.9, 0.999, 1e-8);
  }

  /**
   * Updates {@code n} elements in place: parameters {@code p}, moments {@code m} and {@code v} at
   * {@code [off, off+n)}, gradient {@code g} at {@code [gOff, gOff+n)} multiplied by {@code
   * gradScale} on the fly (unscaling, averaging and clipping folded into one factor, no extra
   * pass).
   *
   * @param t the 1-based number of this update (only applied updates count; skipped steps do not)
   */
  public void update(
      float[] p,
      float[] m,
      float[] v,
      int off,
      float[] g,
      int gOff,
      float gradScale,
      int n,
      double lr,
      double weightDecay,
      long t) {
    float decay = (float) (1 - lr * weightDecay);
    float b1 = (float) beta1;
    float b2 = (float) beta2;
    float oneMinusB1 = (float) (1 - beta1);
    float oneMinusB2 = (float) (1 - beta2);
    double biasCorrection1 = 1 - Math.pow(beta1, t);
    double biasCorrection2 = 1 - Math.pow(beta2, t);
    float negStepSize = (float) -(lr / biasCorrection1);
    float bc2Sqrt = (float) Math.sqrt(biasCorrection2);
    float epsF = (float) eps;
    for (int i = 0; i < n; i++) {
      int k = off + i;
      float grad = g[gOff + i] * gradScale;
      p[k] *= decay;
      m[k] = m[k] * b1 + oneMinusB1 * grad;
      v[k] = v[k] * b2 + oneMinusB2 * grad * grad;
      float denom = (float) Math.sqrt(v[k]) / bc2Sqrt + epsF;
      p[k] += negStepSize * (m[k] / denom);
    }
  }
}
