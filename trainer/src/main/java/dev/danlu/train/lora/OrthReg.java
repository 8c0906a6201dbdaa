package dev.danlu.train.lora;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * AdaLoRA's orthogonality regulariser, as PEFT adds it to the loss of every forward: R = mean over
 * the N = 2 × targets matrices P ∈ {A, B} of ‖P Pᵀ − I‖_F for A (r, in) and ‖Pᵀ P − I‖_F for B
 * (out, r), weighted by orth_reg_weight. Its gradient is dR/dA = 2 (AAᵀ − I) A / (N ‖AAᵀ − I‖) and
 * dR/dB = 2 B (BᵀB − I) / (N ‖BᵀB − I‖). Computed in double on the r × r Gram matrices, in a fixed
 * order, so every rank gets the same bits.
 */
public final class OrthReg {
  private OrthReg() {}

  /** R (without the weight) for the adapter's current A and B. */
  public static double value(LoraAdapter ad) {
    return run(ad, 0.0);
  }

  /**
   * Adds {@code factor} × dR/dP to dLoraA / dLoraB (factor carries the weight, the loss scale and
   * the number of micro-batches the step divides by); returns R.
   */
  public static double addGradient(LoraAdapter ad, double factor) {
    return run(ad, factor);
  }

  private static double run(LoraAdapter ad, double factor) {
    int n = 0;
    for (INDArray[] row : ad.loraA) {
      for (INDArray a : row) {
        n += a == null ? 0 : 2;
      }
    }
    if (n == 0) {
      return 0;
    }
    double sum = 0;
    for (int l = 0; l < ad.loraA.length; l++) {
      for (int m = 0; m < ad.loraA[l].length; m++) {
        if (ad.loraA[l][m] == null) {
          continue;
        }
        sum += term(ad.loraA[l][m], ad.dLoraA[l][m], true, factor / n);
        sum += term(ad.loraB[l][m], ad.dLoraB[l][m], false, factor / n);
      }
    }
    return sum / n;
  }

  /**
   * ‖G − I‖_F for the Gram matrix G of p over its rank index (rows of A, columns of B); adds f ×
   * d‖G − I‖/dp to grad when f ≠ 0.
   */
  private static double term(INDArray p, INDArray grad, boolean rowsAreRanks, double f) {
    int r = (int) (rowsAreRanks ? p.size(0) : p.size(1));
    int len = (int) (rowsAreRanks ? p.size(1) : p.size(0));
    // c order: A[i][j] = v[i*len + j]; B[o][i] = v[o*r + i]
    float[] v = new float[(int) p.length()];
    LoraAdapter.NamedParam.flat(p).get(0, v);
    double[] g = new double[r * r];
    for (int i = 0; i < r; i++) {
      for (int j = i; j < r; j++) {
        double s = 0;
        for (int k = 0; k < len; k++) {
          s +=
              rowsAreRanks
                  ? (double) v[i * len + k] * v[j * len + k]
                  : (double) v[k * r + i] * v[k * r + j];
        }
        g[i * r + j] = s - (i == j ? 1 : 0);
        g[j * r + i] = g[i * r + j];
      }
    }
    double norm2 = 0;
    for (double x : g) {
      norm2 += x * x;
    }
    double norm = Math.sqrt(norm2);
    if (f != 0 && norm > 0) {
      // d‖G − I‖/dP = 2 (G − I) P / ‖G − I‖ (A), 2 P (G − I) / ‖G − I‖ (B); G − I is symmetric
      float[] d = new float[v.length];
      double c = 2 * f / norm;
      for (int i = 0; i < r; i++) {
        for (int k = 0; k < len; k++) {
          double s = 0;
          for (int j = 0; j < r; j++) {
            s += g[i * r + j] * (rowsAreRanks ? v[j * len + k] : v[k * r + j]);
          }
          d[rowsAreRanks ? i * len + k : k * r + i] = (float) (c * s);
        }
      }
      // into the native buffer directly: an ND4J op per matrix costs a thread-pool wake-up
      java.nio.FloatBuffer gb = LoraAdapter.NamedParam.flat(grad);
      for (int i = 0; i < d.length; i++) {
        gb.put(i, gb.get(i) + d[i]);
      }
    }
    return norm;
  }
}
