package dev.danlu.train.comm;

/** Element-wise reduction of a collective. */
public enum ReduceOp {
  SUM,
  MAX;

  float apply(float a, float b) {
    return this == SUM ? a + b : Math.max(a, b);
  }
}
