package dev.danlu.train.lora;

import dev.danlu.train.tensor.Buf;
import dev.danlu.train.tensor.Par;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Inverted dropout on a LoRA branch's input (PEFT: lora_B(lora_A(dropout(x)))). The keep/drop
 * decision for element (t, j) of sample s is keyed by (seed, step, s, layer, module) and the
 * element's index t * width + j, so it does not depend on batch composition, rank count or thread
 * scheduling; the backward pass regenerates the same mask instead of storing it across layers.
 *
 * <p>Each 64-bit hash yields two 32-bit uniforms (elements 2k and 2k+1): the RNG was the largest
 * non-gemm cost of a 7B-layer step before that. Keep probability is exact to 2^-32.
 */
public final class LoraDropout {
  private LoraDropout() {}

  /**
   * Fills {@code mask[n * width + j]} with 1 (keep) or 0 (drop) for rows (batch * seq, width);
   * {@code sampleIds[b]} names the sample in batch row b.
   */
  public static void fillMask(
      byte[] mask,
      int rows,
      int width,
      double p,
      long seed,
      long step,
      long[] sampleIds,
      int seq,
      int layer,
      LoraModule module) {
    long threshold = (long) Math.ceil(p * 0x1p32); // drop iff u32 < threshold
    Par.rows(
        rows,
        width,
        n -> {
          long key = CounterRng.key(seed, step, sampleIds[n / seq], layer, module.ordinal());
          long first = (long) (n % seq) * width;
          int base = n * width;
          long bits = CounterRng.bits(key, first >>> 1);
          for (int j = 0; j < width; j++) {
            long e = first + j;
            if ((e & 1) == 0 && j > 0) {
              bits = CounterRng.bits(key, e >>> 1); // one hash serves elements 2k and 2k+1
            }
            long u = (e & 1) == 0 ? bits & 0xFFFFFFFFL : bits >>> 32;
            mask[base + j] = (byte) (u >= threshold ? 1 : 0);
          }
        });
  }

  /** out = x * mask / (1 - p); works in place (out == x). */
  public static void applyMask(INDArray x, INDArray out, byte[] mask, double p) {
    Buf in = Buf.of(x);
    Buf o = Buf.of(out);
    int width = (int) x.size(1);
    double keepScale = 1.0 / (1.0 - p);
    Par.rows(
        (int) x.size(0),
        width,
        n -> {
          for (int i = n * width, end = i + width; i < end; i++) {
            o.set(i, mask[i] != 0 ? in.get(i) * keepScale : 0.0);
          }
        });
  }
}
