package dev.danlu.train.model;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits, in the order of Hugging Face's {@code generate()} (4.35):
 *
 * <ol>
 *   <li>repetition penalty (CTRL, HF {@code RepetitionPenaltyLogitsProcessor}): the logit of every
 *       token already in the context (prompt and generated so far) is divided by {@code penalty} if
 *       positive, multiplied by it if negative; 1 = off;
 *   <li>at temperature 0, argmax (ties go to the lowest id, as llama2.c's argmax);
 *   <li>otherwise softmax(logits / temperature), restricted to the tokens whose logit is at least
 *       the {@code topK}-th largest (HF {@code TopKLogitsWarper}: ties at the boundary stay; 0 =
 *       off), then to the smallest set of those whose probability reaches {@code topP} (nucleus),
 *       drawn with a seeded RNG.
 * </ol>
 */
public final class Sampler {
  private final double temperature;
  private final double topP;
  private final int topK;
  private final double repetitionPenalty;
  private final SplittableRandom random;

  /** Temperature and nucleus sampling only: no top-k, no repetition penalty. */
  public Sampler(double temperature, double topP, long seed) {
    this(temperature, topP, 0, 1.0, seed);
  }

  /**
   * @param topK keep the {@code topK} most likely tokens (ties at the boundary included); 0 = all
   * @param repetitionPenalty > 0; 1 leaves the logits alone
   */
  public Sampler(double temperature, double topP, int topK, double repetitionPenalty, long seed) {
    if (!(temperature >= 0)) {
      throw new IllegalArgumentException("temperature must be >= 0, got " + temperature);
    }
    if (!(topP > 0 && topP <= 1)) {
      throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
    }
    if (topK < 0) {
      throw new IllegalArgumentException("top-k must be >= 0, got " + topK);
    }
    if (!(repetitionPenalty > 0) || Double.isInfinite(repetitionPenalty)) {
      throw new IllegalArgumentException(
          "repetition penalty must be a positive number, got " + repetitionPenalty);
    }
    this.temperature = temperature;
    this.topP = topP;
    this.topK = topK;
    this.repetitionPenalty = repetitionPenalty;
    this.random = new SplittableRandom(seed);
  }

  /** The next token with no context (the repetition penalty has nothing to act on). */
  public int next(float[] logits) {
    return pick(logits);
  }

  /**
   * The next token after {@code context[0, length)} (prompt and tokens generated so far): the
   * repetition penalty acts on each distinct token in it. {@code logits} is not modified.
   */
  public int next(float[] logits, int[] context, int length) {
    if (repetitionPenalty == 1.0 || length == 0) {
      return pick(logits);
    }
    return pick(penalize(logits, context, length, repetitionPenalty));
  }

  /**
   * The logits after the CTRL / HF repetition penalty: for each distinct id in {@code context[0,
   * length)}, {@code l / penalty} if {@code l > 0}, else {@code l * penalty} (HF's {@code
   * torch.where(score < 0, score * penalty, score / penalty)}; a zero logit stays zero).
   */
  public static float[] penalize(float[] logits, int[] context, int length, double penalty) {
    float[] out = logits.clone();
    boolean[] done = new boolean[logits.length];
    for (int i = 0; i < length; i++) {
      int id = context[i];
      if (id < 0 || id >= out.length || done[id]) {
        continue;
      }
      done[id] = true;
      float l = logits[id];
      out[id] = (float) (l < 0 ? l * penalty : l / penalty);
    }
    return out;
  }

  private int pick(float[] logits) {
    if (temperature == 0) {
      int best = 0;
      for (int i = 1; i < logits.length; i++) {
        if (logits[i] > logits[best]) {
          best = i;
        }
      }
      return best;
    }
    float threshold = Float.NEGATIVE_INFINITY;
    if (topK > 0 && topK < logits.length) {
      float[] sorted = logits.clone();
      Arrays.sort(sorted);
      threshold = sorted[sorted.length - topK];
    }
    double max = Double.NEGATIVE_INFINITY;
    for (float l : logits) {
      max = Math.max(max, l);
    }
    double[] p = new double[logits.length];
    double sum = 0;
    for (int i = 0; i < p.length; i++) {
      p[i] = logits[i] >= threshold ? Math.exp((logits[i] - max) / temperature) : 0;
      sum += p[i];
    }
    Integer[] order = new Integer[p.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (a, b) -> Double.compare(p[b], p[a]));
    double mass = 0;
    int keep = 0;
    while (keep < order.length) {
      mass += p[order[keep]] / sum;
      keep++;
      if (mass >= topP) {
        break;
      }
    }
    double r = random.nextDouble() * mass;
    double acc = 0;
    for (int k = 0; k < keep; k++) {
      acc += p[order[k]] / sum;
      if (r < acc) {
        return order[k];
      }
    }
    return order[keep - 1];
  }
}
