package dev.danlu.train.lora;

import dev.danlu.train.tensor.Buf;
import dev.danlu.train.tensor.Par;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Inverted dropout on a LoRA branch's input (PEFT: lora_B(lora_A(dropout(x)))). The keep/drop
 * decision for element (t, j) of sample s is keyed by (seed, step, s, layer, module) and counter t
 * * width + j, so it does not depend on batch composition, rank count or thread scheduling; the
 * backward pass regenerates the same mask instead of storing it.
 */
public final class LoraDropout {
  private LoraDropout() {}

  /**
   * out = x * keep / (1 - p) for rows (batch * seq, width); {@code sampleIds[b]} names the sample
   * in batch row b. Works in place when out == x.
   */
  public static void apply(
      INDArray x,
      INDArray out,
      double p,
      long seed,
      long step,
      long[] sampleIds,
      int seq,
      int layer,
      LoraModule module) {
    Buf in = Buf.of(x);
    Buf o = Buf.of(out);
    int width = (int) x.size(1);
    int rows = (int) x.size(0);
    double keepScale = 1.0 / (1.0 - p);
    Par.rows(
        rows,
        width,
        n -> {
          long key = CounterRng.key(seed, step, sampleIds[n / seq], layer, module.ordinal());
          long counter0 = (long) (n % seq) * width;
          int base = n * width;
          for (int j = 0; j < width; j++) {
            boolean keep = CounterRng.uniform(key, counter0 + j) >= p;
            o.set(base + j, keep ? in.get(base + j) * keepScale : 0.0);
          }
        });
  }
}
