package dev.danlu.train.model;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits: argmax at temperature 0 (ties go to the lowest id, as
 * llama2.c's argmax), otherwise softmax(logits / temperature) restricted to the smallest set of
 * tokens whose probability reaches {@code topP} (nucleus sampling), drawn with a seeded RNG.
 */
public final class Sampler {
  private final double temperature;
  private final double topP;
  private final SplittableRandom random;

  public Sampler(double temperature, double topP, long seed) {
    if (!(temperature >= 0)) {
      throw new IllegalArgumentException("temperature must be >= 0, got " + temperature);
    }
    if (!(topP > 0 && topP <= 1)) {
      throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
    }
    this.temperature = temperature;
    this.topP = topP;
    this.random = new SplittableRandom(seed);
  }

  public int next(float[] logits) {
    if (temperature == 0) {
      int best = 0;
      for (int i = 1; i < logits.length; i++) {
        if (logits[i] > logits[best]) {
          best = i;
        }
      }
      return best;
    }
    double max = Double.NEGATIVE_INFINITY;
    for (float l : logits) {
      max = Math.max(max, l);
    }
    double[] p = new double[logits.length];
    double sum = 0;
    for (int i = 0; i < p.length; i++) {
      p[i] = Math.exp((logits[i] - max) / temperature);
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
