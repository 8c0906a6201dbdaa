package dev.danlu.launch.demo;

import dev.danlu.train.data.ShardBlocks;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.Llama;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import java.io.IOException;
import java.nio.file.Path;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Validation perplexity of a model (optionally with a LoRA adapter applied unmerged) on a prepared
 * dataset's validation split: exp of the cross-entropy averaged over every predicted token, the
 * number run_clm_pt reports as {@code perplexity = exp(eval_loss)} — but token-weighted over the
 * whole split rather than a mean of per-batch means.
 */
public final class Perplexity {
  /** Mean loss per token and how many tokens it averages. */
  public record Result(double loss, long tokens, long rows) {
    public double perplexity() {
      return Math.exp(loss);
    }
  }

  private Perplexity() {}

  /**
   * Evaluates every validation row of {@code shards} in batches of {@code batch} rows.
   *
   * @param adapter null for the base model alone
   */
  public static Result evaluate(LlamaWeights w, LoraAdapter adapter, Path shards, int batch)
      throws IOException {
    try (ShardBlocks data = ShardBlocks.open(shards, 0, null, w.config().vocabSize())) {
      long rows = data.validationRows();
      if (rows == 0) {
        throw new IOException(
            shards
                + ": the validation split is empty; prepare the data with a larger"
                + " --validation-fraction or more text");
      }
      LoraConfig lc = adapter == null ? null : adapter.config;
      LlamaState full =
          new LlamaState(w.config(), batch, data.blockSize(), lc, false, DataType.FLOAT);
      LlamaState tail = null;
      double sum = 0;
      long tokens = 0;
      for (long r = 0; r < rows; r += batch) {
        int b = (int) Math.min(batch, rows - r);
        long[] ids = new long[b];
        for (int k = 0; k < b; k++) {
          ids[k] = r + k;
        }
        Batch in = data.validationBatch(ids);
        LlamaState s = full;
        if (b != batch) {
          tail = new LlamaState(w.config(), b, data.blockSize(), lc, false, DataType.FLOAT);
          s = tail;
        }
        double mean = Llama.forward(w, adapter, s, in);
        sum += mean * s.tokenCount();
        tokens += s.tokenCount();
      }
      return new Result(sum / tokens, tokens, rows);
    }
  }
}
