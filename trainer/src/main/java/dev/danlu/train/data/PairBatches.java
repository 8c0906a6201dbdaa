package dev.danlu.train.data;

import dev.danlu.train.model.Batch;
import java.io.IOException;

/**
 * The training view of preference pairs prepared by {@code danlu prep-pairs}: pair {@code p} is
 * rows {@code 2p} (chosen) and {@code 2p + 1} (rejected) of the split's examples (Alpaca-2 prompt
 * masked with -100, response labelled). A micro-batch of pairs {@code [p_0 .. p_{n-1}]} holds the
 * chosen rows first, then the rejected ones in the same order (TRL's concatenated forward), padded
 * to the longest of all 2n as SFT pads; each row's dropout key is its example row, so a pair gets
 * the same masks on any rank. The loop's rows are pairs: one global batch of B rows is B pairs.
 */
public final class PairBatches implements TrainData {
  private final SftBatches rows;
  private final long trainPairs;
  private final long validationPairs;
  private final String sha256;

  /**
   * @param rows the examples as SFT batches (no packing: a pair's rows stay whole and apart)
   * @param trainExamples rows of the train split (even)
   * @param validationExamples rows of the validation split (even)
   */
  public PairBatches(SftBatches rows, long trainExamples, long validationExamples, String sha256) {
    if (trainExamples % 2 != 0 || validationExamples % 2 != 0) {
      throw new IllegalArgumentException(
          "a pair dataset has an even number of rows per split (chosen, rejected); got "
              + trainExamples
              + " train and "
              + validationExamples
              + " validation rows: prepare it again with prep-pairs");
    }
    this.rows = rows;
    this.trainPairs = trainExamples / 2;
    this.validationPairs = validationExamples / 2;
    this.sha256 = sha256;
  }

  /** Example rows of pairs: chosen rows, then rejected rows. */
  static long[] exampleRows(long[] pairs) {
    long[] r = new long[2 * pairs.length];
    for (int i = 0; i < pairs.length; i++) {
      r[i] = 2 * pairs[i];
      r[pairs.length + i] = 2 * pairs[i] + 1;
    }
    return r;
  }

  @Override
  public long trainRows() {
    return trainPairs;
  }

  @Override
  public long validationRows() {
    return validationPairs;
  }

  @Override
  public Batch trainBatch(long[] pairs, long step) throws IOException {
    return rows.trainBatch(exampleRows(pairs), step);
  }

  @Override
  public Batch validationBatch(long[] pairs) throws IOException {
    return rows.validationBatch(exampleRows(pairs));
  }

  @Override
  public int length(long pair) throws IOException {
    return Math.max(rows.length(2 * pair), rows.length(2 * pair + 1));
  }

  @Override
  public long version() {
    return rows.version();
  }

  @Override
  public String sha256() {
    return sha256;
  }

  @Override
  public String describe() {
    return trainPairs
        + " train / "
        + validationPairs
        + " validation preference pairs (each micro-batch: chosen rows, then rejected; "
        + rows.describe().replaceFirst("^[^,]*, ", "")
        + ")";
  }

  @Override
  public void close() throws IOException {
    rows.close();
  }
}
