package dev.danlu.train.data;

import dev.danlu.data.sft.SftExamples;
import dev.danlu.train.model.Batch;
import java.io.IOException;
import java.util.Arrays;

/**
 * The training view of prepared instruction examples (prep-sft): micro-batches of given global row
 * ids, each right-padded to its longest row (not to max_seq_length) with the tokenizer's pad id,
 * attention mask 0 and label -100 on the padding, as the reference's data collator pads. Rows
 * longer than {@code maxSeqLength} (when it is set below the prepared length) are cut, labels with
 * them.
 */
public final class SftBatches implements TrainData {
  private final SftExamples train;
  private final SftExamples validation;
  private final int padId;
  private final int maxSeqLength;
  private final int padToMultipleOf;
  private final long version;
  private final String sha256;

  /**
   * @param validation may have no rows
   * @param maxSeqLength cut rows to this many tokens; 0 keeps them as prepared
   * @param padToMultipleOf round each micro-batch's length up to a multiple of this (capped at
   *     {@code maxSeqLength} when set), so few distinct shapes recur (HF's collator option of the
   *     same name); 1 pads to the longest row exactly
   * @param version the dataset's version (a manifest's), recorded in checkpoints
   * @param sha256 identifies the dataset's content, recorded in checkpoints
   */
  public SftBatches(
      SftExamples train,
      SftExamples validation,
      int padId,
      int maxSeqLength,
      int padToMultipleOf,
      long version,
      String sha256) {
    this.train = train;
    this.validation = validation;
    this.padId = padId;
    this.maxSeqLength = maxSeqLength;
    this.padToMultipleOf = Math.max(1, padToMultipleOf);
    this.version = version;
    this.sha256 = sha256;
  }

  @Override
  public long trainRows() {
    return train.rows();
  }

  @Override
  public long validationRows() {
    return validation.rows();
  }

  @Override
  public Batch trainBatch(long[] rows, long step) throws IOException {
    return batch(train, rows, step, true);
  }

  @Override
  public Batch validationBatch(long[] rows) throws IOException {
    return batch(validation, rows, 0, false);
  }

  private Batch batch(SftExamples split, long[] rows, long step, boolean isTrain)
      throws IOException {
    SftExamples.Example[] ex = new SftExamples.Example[rows.length];
    int seq = 1;
    for (int b = 0; b < rows.length; b++) {
      ex[b] = split.read(rows[b]);
      seq = Math.max(seq, length(ex[b]));
    }
    seq = (seq + padToMultipleOf - 1) / padToMultipleOf * padToMultipleOf;
    if (maxSeqLength > 0) {
      seq = Math.min(seq, Math.max(maxSeqLength, longest(ex)));
    }
    int n = rows.length * seq;
    int[] ids = new int[n];
    int[] mask = new int[n];
    int[] labels = new int[n];
    Arrays.fill(ids, padId);
    Arrays.fill(labels, SftExamples.IGNORE_INDEX);
    for (int b = 0; b < rows.length; b++) {
      int len = length(ex[b]);
      System.arraycopy(ex[b].inputIds(), 0, ids, b * seq, len);
      System.arraycopy(ex[b].labels(), 0, labels, b * seq, len);
      Arrays.fill(mask, b * seq, b * seq + len, 1);
    }
    // sample ids: the global row ids, which key the LoRA dropout masks whatever rank reads them
    return new Batch(rows.length, seq, ids, mask, labels, rows.clone(), step, isTrain);
  }

  @Override
  public int length(long row) throws IOException {
    return length(train.read(row));
  }

  private int longest(SftExamples.Example[] ex) {
    int m = 0;
    for (SftExamples.Example e : ex) {
      m = Math.max(m, length(e));
    }
    return m;
  }

  private int length(SftExamples.Example e) {
    return maxSeqLength > 0 ? Math.min(maxSeqLength, e.length()) : e.length();
  }

  @Override
  public long version() {
    return version;
  }

  @Override
  public String sha256() {
    return sha256;
  }

  @Override
  public String describe() {
    return trainRows()
        + " train / "
        + validationRows()
        + " validation examples"
        + (maxSeqLength > 0 ? " of at most " + maxSeqLength + " tokens" : "")
        + ", padded per micro-batch to its longest"
        + (padToMultipleOf > 1 ? " rounded up to a multiple of " + padToMultipleOf : "");
  }

  @Override
  public void close() throws IOException {
    try {
      train.close();
    } finally {
      validation.close();
    }
  }
}
