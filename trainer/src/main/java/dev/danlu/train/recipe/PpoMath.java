package dev.danlu.train.recipe;

/**
 * The arithmetic of one PPO update on rollouts, as TRL's {@code PPOTrainer} (0.7) defines it, on
 * per-token arrays {@code [sample][t]} over the response tokens with a mask (1 = a real response
 * token): the KL-penalised per-token rewards, GAE advantages and returns, whitened advantages, the
 * clipped policy and value losses with their gradients with respect to the new log-probabilities
 * and values, and the adaptive KL controller. Pure functions of their inputs; {@link PpoRollouts}
 * and {@link PpoIterations} run them in {@code stage: ppo}.
 */
public final class PpoMath {
  private PpoMath() {}

  /**
   * TRL's {@code AdaptiveKLController} (Ziegler et al. 2019): after each PPO batch, {@code value *=
   * 1 + clip(kl / target − 1, −0.2, 0.2) · nSteps / horizon}.
   */
  public static final class AdaptiveKl {
    private double value;
    private final double target;
    private final double horizon;

    public AdaptiveKl(double initKlCoef, double target, double horizon) {
      this.value = initKlCoef;
      this.target = target;
      this.horizon = horizon;
    }

    public double value() {
      return value;
    }

    /** Sets the coefficient a checkpoint recorded (a resumed run continues the controller). */
    public void restore(double v) {
      this.value = v;
    }

    public void update(double currentKl, int nSteps) {
      double err = Math.max(-0.2, Math.min(0.2, currentKl / target - 1));
      value *= 1 + err * nSteps / horizon;
    }
  }

  /**
   * Per-token rewards: {@code −klCoef · (logprob − refLogprob)} on every response token, plus the
   * reward model's score on the last one.
   */
  public static double[][] rewards(
      double[] scores, double[][] logprobs, double[][] refLogprobs, int[][] mask, double klCoef) {
    double[][] r = new double[logprobs.length][];
    for (int i = 0; i < r.length; i++) {
      r[i] = new double[logprobs[i].length];
      int last = -1;
      for (int t = 0; t < r[i].length; t++) {
        if (mask[i][t] != 0) {
          r[i][t] = -klCoef * (logprobs[i][t] - refLogprobs[i][t]);
          last = t;
        }
      }
      if (last >= 0) {
        r[i][last] += scores[i];
      }
    }
    return r;
  }

  /** Advantages (whitened over all masked tokens) and returns (not whitened). */
  public record Gae(double[][] advantages, double[][] returns) {}

  /**
   * Generalised advantage estimation (Schulman et al. 2016) backwards over each sample's tokens
   * with values and rewards masked to 0 outside the response: δ_t = r_t + γ V_{t+1} − V_t, A_t =
   * δ_t + γλ A_{t+1}, returns = A + V; then A whitened with the masked mean and the unbiased
   * (Bessel) masked variance, {@code (A − mean) / √(var + 1e-8)}.
   */
  public static Gae gae(
      double[][] values, double[][] rewards, int[][] mask, double gamma, double lam) {
    Gae raw = gaeUnwhitened(values, rewards, mask, gamma, lam);
    double[] m = maskedMoments(raw.advantages(), mask, Double.NaN);
    double mean = m[1] / m[0];
    double[] sq = maskedMoments(raw.advantages(), mask, mean);
    whiten(raw.advantages(), mean, variance(m[0], sq[1]));
    return raw;
  }

  /**
   * GAE without the whitening: advantages and returns = advantages + values, per sample. A batch
   * split over ranks whitens with moments summed over all of them ({@link #maskedMoments}).
   */
  public static Gae gaeUnwhitened(
      double[][] values, double[][] rewards, int[][] mask, double gamma, double lam) {
    int n = values.length;
    double[][] adv = new double[n][];
    double[][] ret = new double[n][];
    for (int i = 0; i < n; i++) {
      int len = values[i].length;
      adv[i] = new double[len];
      ret[i] = new double[len];
      double last = 0;
      for (int t = len - 1; t >= 0; t--) {
        double v = values[i][t] * mask[i][t];
        double next = t + 1 < len ? values[i][t + 1] * mask[i][t + 1] : 0;
        double delta = rewards[i][t] * mask[i][t] + gamma * next - v;
        last = delta + gamma * lam * last;
        adv[i][t] = last;
        ret[i][t] = last + v;
      }
    }
    return new Gae(adv, ret);
  }

  /**
   * {@code {count, Σ x}} over the masked entries when {@code mean} is NaN, else {@code {count, Σ (x
   * − mean)²}}.
   */
  public static double[] maskedMoments(double[][] x, int[][] mask, double mean) {
    double count = 0;
    double sum = 0;
    for (int i = 0; i < x.length; i++) {
      for (int t = 0; t < x[i].length; t++) {
        count += mask[i][t];
        if (Double.isNaN(mean)) {
          sum += x[i][t] * mask[i][t];
        } else {
          double c = x[i][t] - mean;
          sum += c * c * mask[i][t];
        }
      }
    }
    return new double[] {count, sum};
  }

  /** The unbiased (Bessel) variance from a count and a sum of squared deviations. */
  public static double variance(double count, double sumSquares) {
    return sumSquares / count * (count / (count - 1));
  }

  /** {@code x = (x − mean) / √(var + 1e-8)} in place (TRL's {@code masked_whiten}). */
  public static void whiten(double[][] x, double mean, double var) {
    double rstd = 1 / Math.sqrt(var + 1e-8);
    for (double[] row : x) {
      for (int t = 0; t < row.length; t++) {
        row[t] = (row[t] - mean) * rstd;
      }
    }
  }

  /**
   * One mini-batch's loss {@code pg + vfCoef · vf} and its gradients.
   *
   * @param dLogprobs dLoss / d new log-probability per token
   * @param dValues dLoss / d new value per token
   * @param clipFraction share of tokens whose policy loss took the clipped branch
   * @param approxKl ½ mean (logprob − old)²
   */
  public record Loss(
      double loss,
      double policyLoss,
      double valueLoss,
      double[][] dLogprobs,
      double[][] dValues,
      double clipFraction,
      double approxKl) {}

  /**
   * TRL's {@code loss}: ratio = exp(logprob − old); policy loss = masked mean of max(−A·ratio,
   * −A·clip(ratio, 1 ± cliprange)); value loss = ½ masked mean of max((V − R)², (clip(V, old V ±
   * clipValue) − R)²); masked means over every token of the mini-batch.
   */
  public static Loss loss(
      double[][] oldLogprobs,
      double[][] oldValues,
      double[][] logprobs,
      double[][] values,
      double[][] advantages,
      double[][] returns,
      int[][] mask,
      double cliprange,
      double cliprangeValue,
      double vfCoef) {
    int n = logprobs.length;
    double count = 0;
    for (int[] m : mask) {
      for (int x : m) {
        count += x;
      }
    }
    double pg = 0;
    double vf = 0;
    double clipped = 0;
    double kl = 0;
    double[][] dLp = new double[n][];
    double[][] dV = new double[n][];
    for (int i = 0; i < n; i++) {
      int len = logprobs[i].length;
      dLp[i] = new double[len];
      dV[i] = new double[len];
      for (int t = 0; t < len; t++) {
        if (mask[i][t] == 0) {
          continue;
        }
        double a = advantages[i][t];
        double diff = logprobs[i][t] - oldLogprobs[i][t];
        double ratio = Math.exp(diff);
        double clippedRatio = Math.max(1 - cliprange, Math.min(1 + cliprange, ratio));
        double l1 = -a * ratio;
        double l2 = -a * clippedRatio;
        pg += Math.max(l1, l2);
        clipped += l2 > l1 ? 1 : 0;
        kl += diff * diff;
        // d max(l1, l2)/d logprob: the chosen branch's; inside the clip range both are equal
        boolean inside = ratio >= 1 - cliprange && ratio <= 1 + cliprange;
        double dRatio = l1 >= l2 ? -a : (inside ? -a : 0);
        dLp[i][t] = dRatio * ratio / count;

        double v = values[i][t];
        double ov = oldValues[i][t];
        double vc = Math.max(ov - cliprangeValue, Math.min(ov + cliprangeValue, v));
        double r = returns[i][t];
        double v1 = (v - r) * (v - r);
        double v2 = (vc - r) * (vc - r);
        vf += Math.max(v1, v2);
        boolean vInside = v >= ov - cliprangeValue && v <= ov + cliprangeValue;
        double dv = v1 >= v2 ? 2 * (v - r) : (vInside ? 2 * (vc - r) : 0);
        dV[i][t] = vfCoef * 0.5 * dv / count;
      }
    }
    double policyLoss = pg / count;
    double valueLoss = 0.5 * vf / count;
    return new Loss(
        policyLoss + vfCoef * valueLoss,
        policyLoss,
        valueLoss,
        dLp,
        dV,
        clipped / count,
        0.5 * kl / count);
  }
}
