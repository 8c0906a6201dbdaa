package dev.danlu.train.lora;

import dev.danlu.train.tensor.Buf;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Grows (or truncates) an embedding or LM-head matrix (vocab, dim) to a new vocabulary, e.g.
 * LLaMA-2's 32000 to Chinese-LLaMA-2's 55296. Old rows are copied; new rows are either drawn from
 * N(0, 0.02) as transformers 4.35's resize_token_embeddings does (a fresh nn.Embedding/Linear under
 * LLaMA's _init_weights, initializer_range 0.02), or set to the mean of the old rows (the centre of
 * what newer transformers sample from). Random rows are keyed by (seed, tag, row), so they do not
 * depend on the old vocabulary size or the order of calls.
 */
public final class VocabResize {
  /** How new rows start. */
  public enum Init {
    NORMAL,
    MEAN
  }

  private VocabResize() {}

  public static INDArray resize(INDArray old, int newVocab, Init init, long seed, int tag) {
    if (newVocab <= 0) {
      throw new IllegalArgumentException("new vocabulary size must be positive, got " + newVocab);
    }
    int oldVocab = (int) old.size(0);
    int dim = (int) old.size(1);
    INDArray out = Nd4j.create(old.dataType(), newVocab, dim);
    Buf src = Buf.of(old.dup('c'));
    Buf dst = Buf.of(out);
    int keep = Math.min(oldVocab, newVocab);
    for (int i = 0; i < keep * dim; i++) {
      dst.set(i, src.get(i));
    }
    double[] mean = new double[dim];
    if (init == Init.MEAN) {
      for (int r = 0; r < oldVocab; r++) {
        for (int j = 0; j < dim; j++) {
          mean[j] += src.get(r * dim + j);
        }
      }
      for (int j = 0; j < dim; j++) {
        mean[j] /= oldVocab;
      }
    }
    for (int r = keep; r < newVocab; r++) {
      long key = CounterRng.key(seed, 0x70CAB, tag, r);
      for (int j = 0; j < dim; j++) {
        double v;
        if (init == Init.MEAN) {
          v = mean[j];
        } else {
          // Box-Muller on two counter-keyed uniforms
          double u1 = 1.0 - CounterRng.uniform(key, 2L * j);
          double u2 = CounterRng.uniform(key, 2L * j + 1);
          v = 0.02 * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
        }
        dst.set(r * dim + j, v);
      }
    }
    return out;
  }
}
