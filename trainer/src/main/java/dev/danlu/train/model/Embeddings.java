package dev.danlu.train.model;

import org.nd4j.linalg.api.buffer.DataType;

/**
 * Sentence embeddings as Chinese-LLaMA-Alpaca-2's OpenAI server computes them ({@code
 * scripts/openai_server_demo/openai_api_server.py}, {@code get_embedding}): the model's last hidden
 * state ({@code hidden_states[-1]} of transformers 4.35, which is after the final RMSNorm),
 * averaged over the tokens (BOS included, as {@code tokenizer(input)} adds it) and L2-normalized
 * ({@code F.normalize(p=2)}). One text per forward, so no padding enters the mean.
 */
public final class Embeddings {
  private Embeddings() {}

  /** The normalized mean of the final-norm hidden states over {@code ids} (BOS first). */
  public static float[] meanPooled(LlamaWeights w, int[] ids) {
    if (ids.length == 0) {
      throw new IllegalArgumentException("an embedding needs at least one token");
    }
    LlamaConfig c = w.config();
    LlamaState s = new LlamaState(c, 1, ids.length, null, false, w.dataType());
    Llama.forwardLogits(w, null, s, Batch.of(1, ids.length, ids, null));
    int dim = c.hiddenSize();
    double[][] h = s.xf.castTo(DataType.DOUBLE).toDoubleMatrix(); // (seq, dim) after final norm
    double[] mean = new double[dim];
    for (double[] row : h) {
      for (int i = 0; i < dim; i++) {
        mean[i] += row[i];
      }
    }
    double norm = 0;
    for (int i = 0; i < dim; i++) {
      mean[i] /= ids.length;
      norm += mean[i] * mean[i];
    }
    // F.normalize divides by max(||x||, 1e-12)
    double scale = 1.0 / Math.max(Math.sqrt(norm), 1e-12);
    float[] out = new float[dim];
    for (int i = 0; i < dim; i++) {
      out[i] = (float) (mean[i] * scale);
    }
    return out;
  }
}
