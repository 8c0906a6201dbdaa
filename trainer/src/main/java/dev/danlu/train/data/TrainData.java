package dev.danlu.train.data;

import dev.danlu.train.model.Batch;
import java.io.IOException;

/**
 * What the training loop needs of a dataset, whatever a recipe trains on: a train split addressed
 * by global row id (the {@link BatchPlan} decides which rows a rank reads at each step), a
 * validation split, and an identity that a checkpoint records so a resume on other data is refused.
 * Pretraining implements it over Arrow shards ({@link ShardBlocks}); SFT over tokenized instruction
 * examples.
 */
public interface TrainData extends AutoCloseable {
  /** Rows of the train split. */
  long trainRows();

  /** Rows of the validation split (0: no evaluation). */
  long validationRows();

  /**
   * A training micro-batch of train rows {@code rows} at optimizer step {@code step} (dropout is
   * keyed by step and each row's id). Its sequence length may differ between batches.
   */
  Batch trainBatch(long[] rows, long step) throws IOException;

  /** An evaluation batch of validation rows (no dropout). */
  Batch validationBatch(long[] rows) throws IOException;

  /**
   * Row {@code row}'s length in tokens, for {@code group_by_length}; data of one fixed length
   * (pretraining blocks) need not support it.
   */
  default int length(long row) throws IOException {
    throw new UnsupportedOperationException(
        describe() + ": rows all have one length; group_by_length does not apply");
  }

  /** A version number of the data (a dataset manifest's), recorded in checkpoints. */
  long version();

  /** sha256 identifying the data's content: a checkpoint written on other data is refused. */
  String sha256();

  /** One line for the start-of-run log, e.g. "1763 train / 78 validation blocks of 128 tokens". */
  String describe();

  @Override
  void close() throws IOException;
}
