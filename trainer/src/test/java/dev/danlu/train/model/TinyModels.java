package dev.danlu.train.model;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.tensor.Buf;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;

/** Small random configurations and batches shared by the model tests. */
final class TinyModels {
  private TinyModels() {}

  /** GQA (4 heads, 2 kv heads), untied, 2 layers. */
  static LlamaConfig config(LlamaConfig.RopeScaling scaling, int maxPos) {
    return new LlamaConfig(16, 24, 2, 4, 2, 40, 1e-5, 10000.0, scaling, false, maxPos);
  }

  static LoraConfig lora(double dropout) {
    return new LoraConfig(4, 8.0, dropout, LoraConfig.allTargets(), true, true, 7);
  }

  /** An adapter whose B is random too, so that every gradient path is exercised. */
  static LoraAdapter trainedAdapter(LlamaWeights w, LoraConfig lc, long seed) {
    LoraAdapter ad = LoraAdapter.init(lc, w);
    SplittableRandom r = new SplittableRandom(seed);
    for (LoraAdapter.NamedParam p : ad.trainable()) {
      if (p.name().contains("lora_B")) {
        Buf b = Buf.of(p.value());
        for (int i = 0; i < b.length(); i++) {
          b.set(i, (r.nextDouble() - 0.5) * 0.2);
        }
      }
    }
    return ad;
  }

  /** Two rows; the second is right-padded after {@code seq - 2} tokens (labels -100 there). */
  static Batch batch(int seq, int vocab, long seed, boolean train) {
    SplittableRandom r = new SplittableRandom(seed);
    int[] ids = new int[2 * seq];
    int[] mask = new int[2 * seq];
    int[] labels = new int[2 * seq];
    for (int n = 0; n < ids.length; n++) {
      boolean pad = n >= seq && n - seq >= seq - 2;
      ids[n] = pad ? 0 : r.nextInt(vocab);
      mask[n] = pad ? 0 : 1;
      labels[n] = pad ? -100 : ids[n];
    }
    labels[1] = -100; // an ignored label inside a real row too
    return new Batch(2, seq, ids, mask, labels, new long[] {11, 12}, 3, train);
  }

  static LlamaState state(LlamaConfig c, Batch b, LoraConfig lc, boolean ckpt, DataType dt) {
    return new LlamaState(c, b.batch(), b.seq(), lc, ckpt, dt);
  }
}
