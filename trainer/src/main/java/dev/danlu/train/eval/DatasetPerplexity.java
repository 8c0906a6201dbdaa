package dev.danlu.train.eval;

import dev.danlu.train.comm.Communicator;
import dev.danlu.train.comm.LocalCommunicator;
import dev.danlu.train.data.ShardBlocks;
import dev.danlu.train.data.TrainData;
import dev.danlu.train.data.TrainSplitScored;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.recipe.Evaluator;
import dev.danlu.train.recipe.Objective;
import java.io.IOException;
import java.nio.file.Path;

/**
 * Perplexity of a model (optionally with a LoRA adapter applied unmerged) on a prepared dataset's
 * validation split: the training loop's own {@link Evaluator} on one in-process rank, so the figure
 * is by construction the {@code eval_loss} a training run reports on the same data — exp of the
 * cross-entropy averaged over every predicted token of the split (token-weighted over the whole
 * split rather than run_clm_pt's mean of per-batch means). {@code eval ppl --data} and the demo use
 * it.
 */
public final class DatasetPerplexity {
  /** Mean loss per token, how many tokens it averages, and over how many blocks. */
  public record Result(double loss, long tokens, long rows) {
    public double perplexity() {
      return Math.exp(loss);
    }
  }

  private DatasetPerplexity() {}

  /**
   * Evaluates every validation row of {@code shards} in batches of {@code batch} rows.
   *
   * @param adapter null for the base model alone
   */
  public static Result evaluate(LlamaWeights w, LoraAdapter adapter, Path shards, int batch)
      throws IOException {
    return evaluate(w, adapter, shards, batch, "validation");
  }

  /**
   * Evaluates every row of split {@code split} ("validation" or "train") of {@code shards}.
   *
   * @param adapter null for the base model alone
   */
  public static Result evaluate(
      LlamaWeights w, LoraAdapter adapter, Path shards, int batch, String split)
      throws IOException {
    if (!split.equals("validation") && !split.equals("train")) {
      throw new IllegalArgumentException(
          "split '" + split + "': a prep dataset has the splits train and validation");
    }
    ShardBlocks blocks = ShardBlocks.open(shards, 0, null, w.config().vocabSize());
    try (TrainData data = split.equals("train") ? new TrainSplitScored(blocks) : blocks;
        Communicator one = LocalCommunicator.group(1).get(0)) {
      long rows = data.validationRows();
      if (rows == 0) {
        throw new IOException(
            shards
                + ": the "
                + split
                + " split is empty; prepare the data with a larger"
                + " --validation-fraction or more text");
      }
      Evaluator.Result r =
          new Evaluator(w.config(), w, adapter, data, Objective.CAUSAL_LM, batch, one).run();
      return new Result(r.loss(), r.tokens(), rows);
    }
  }
}
