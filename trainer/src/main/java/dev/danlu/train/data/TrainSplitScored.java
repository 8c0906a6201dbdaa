package dev.danlu.train.data;

import dev.danlu.train.model.Batch;
import java.io.IOException;

/**
 * A dataset's train split seen as the split to score: its train rows served as evaluation batches
 * (no dropout), so the {@link dev.danlu.train.recipe.Evaluator} — which scores validation rows —
 * measures the train split the same way ({@code eval ppl --data D --split train}).
 */
public final class TrainSplitScored implements TrainData {
  private final TrainData data;

  public TrainSplitScored(TrainData data) {
    this.data = data;
  }

  @Override
  public long trainRows() {
    return data.trainRows();
  }

  @Override
  public long validationRows() {
    return data.trainRows();
  }

  @Override
  public Batch trainBatch(long[] rows, long step) throws IOException {
    return data.trainBatch(rows, step);
  }

  @Override
  public Batch validationBatch(long[] rows) throws IOException {
    Batch b = data.trainBatch(rows, 0);
    return new Batch(
        b.batch(),
        b.seq(),
        b.inputIds(),
        b.attentionMask(),
        b.labels(),
        b.sampleIds(),
        0,
        false,
        b.segmentIds());
  }

  @Override
  public long version() {
    return data.version();
  }

  @Override
  public String sha256() {
    return data.sha256();
  }

  @Override
  public String describe() {
    return data.describe() + " (scoring the train split)";
  }

  @Override
  public void close() throws IOException {
    data.close();
  }
}
