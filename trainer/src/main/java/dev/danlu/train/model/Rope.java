package dev.danlu.train.model;

/**
 * Rotary-embedding tables in Hugging Face's convention (transformers 4.35 LlamaRotaryEmbedding and
 * its linear / dynamic-NTK subclasses, and the reference's NTK alpha patch, see {@link NtkAlpha}):
 * inv_freq[i] = 1 / base^(2i/headDim), angle = t / piFactor * inv_freq, and the same angle serves
 * both halves of a head (rotate_half).
 *
 * <p>In float32 mode the angles are computed with float32 rounding at the same steps as PyTorch
 * does, because at position 500 a one-ulp difference in the angle is already a 3e-5 relative error
 * in sin/cos; float64 mode (finite-difference tests) computes exactly.
 */
public final class Rope {
  /** cos/sin of [position, headDim/2], row-major. */
  public final double[] cos;

  public final double[] sin;
  public final int positions;

  private Rope(double[] cos, double[] sin, int positions) {
    this.cos = cos;
    this.sin = sin;
    this.positions = positions;
  }

  /**
   * Tables for positions 0..length-1 of a sequence whose total (key) length is {@code length}.
   * Dynamic NTK scaling depends on that length, as in HF 4.35: the base grows once the sequence is
   * longer than max_position_embeddings and is the plain rope_theta otherwise.
   */
  public static Rope forLength(LlamaConfig c, int length, boolean float32) {
    int dim = c.headDim();
    int half = dim / 2;
    double base = c.ropeTheta();
    double positionScale = c.piFactor();
    LlamaConfig.RopeScaling rs = c.ropeScaling();
    if (c.ntk() != null) {
      // the reference's NTK patch: a larger base, positions still divided by the PI factor
      base = c.ntk().base(base, dim, length, c.maxPositionEmbeddings());
    } else if (rs != null
        && rs.type() == LlamaConfig.RopeScaling.Type.DYNAMIC
        && length > c.maxPositionEmbeddings()) {
      double f = rs.factor();
      base =
          base
              * Math.pow(
                  f * length / c.maxPositionEmbeddings() - (f - 1), (double) dim / (dim - 2));
    }
    double[] cos = new double[length * half];
    double[] sin = new double[length * half];
    for (int i = 0; i < half; i++) {
      double inv;
      if (float32) {
        float e = (float) (2 * i) / (float) dim;
        inv = 1.0f / (float) Math.pow((float) base, e);
      } else {
        inv = 1.0 / Math.pow(base, (2.0 * i) / dim);
      }
      for (int t = 0; t < length; t++) {
        double angle;
        if (float32) {
          float tt = (float) t;
          if (positionScale != 1.0) {
            tt = tt / (float) positionScale;
          }
          angle = tt * (float) inv;
          cos[t * half + i] = (float) Math.cos((float) angle);
          sin[t * half + i] = (float) Math.sin((float) angle);
        } else {
          angle = t / positionScale * inv;
          cos[t * half + i] = Math.cos(angle);
          sin[t * half + i] = Math.sin(angle);
        }
      }
    }
    return new Rope(cos, sin, length);
  }
}
