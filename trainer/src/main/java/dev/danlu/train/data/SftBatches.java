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
 *
 * <p>With packing, a row is several examples ({@link SftPacking}, rows of at most {@code
 * maxSeqLength} tokens): the batch marks each example's tokens as its own segment, so attention and
 * rotary positions restart at each example and a packed row's loss is the sum of its examples'
 * losses. The label of an example's first token is ignored, as it is when the example stands alone
 * (nothing before it predicts it).
 */
public final class SftBatches implements TrainData {
  private final SftExamples train;
  private final SftExamples validation;
  private final int padId;
  private final int maxSeqLength;
  private final int padToMultipleOf;
  private final long version;
  private final String sha256;
  private final SftPacking trainPacking; // null: one example per row
  private final SftPacking validationPacking;

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
      String sha256)
      throws IOException {
    this(train, validation, padId, maxSeqLength, padToMultipleOf, false, version, sha256);
  }

  /**
   * @param packing pack several examples per row, up to {@code maxSeqLength} tokens (which must
   *     then be set)
   */
  public SftBatches(
      SftExamples train,
      SftExamples validation,
      int padId,
      int maxSeqLength,
      int padToMultipleOf,
      boolean packing,
      long version,
      String sha256)
      throws IOException {
    if (packing && maxSeqLength <= 0) {
      throw new IllegalArgumentException("packing needs a row length: max_seq_length > 0");
    }
    this.train = train;
    this.validation = validation;
    this.padId = padId;
    this.maxSeqLength = maxSeqLength;
    this.padToMultipleOf = Math.max(1, padToMultipleOf);
    this.version = version;
    // packed rows are other rows: a checkpoint of the unpacked run must not resume this one
    this.sha256 = packing ? rowsSha(sha256 + " packed into rows of " + maxSeqLength) : sha256;
    this.trainPacking = packing ? SftPacking.pack(lengths(train), maxSeqLength) : null;
    this.validationPacking = packing ? SftPacking.pack(lengths(validation), maxSeqLength) : null;
  }

  private static String rowsSha(String what) {
    try {
      return java.util.HexFormat.of()
          .formatHex(
              java.security.MessageDigest.getInstance("SHA-256")
                  .digest(what.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private int[] lengths(SftExamples split) throws IOException {
    if (split.rows() > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(split.rows() + " examples are too many to pack");
    }
    int[] out = new int[(int) split.rows()];
    for (int i = 0; i < out.length; i++) {
      out[i] = length(split.read(i));
    }
    return out;
  }

  @Override
  public long trainRows() {
    return trainPacking != null ? trainPacking.rows() : train.rows();
  }

  @Override
  public long validationRows() {
    return validationPacking != null ? validationPacking.rows() : validation.rows();
  }

  @Override
  public Batch trainBatch(long[] rows, long step) throws IOException {
    return batch(train, trainPacking, rows, step, true);
  }

  @Override
  public Batch validationBatch(long[] rows) throws IOException {
    return batch(validation, validationPacking, rows, 0, false);
  }

  private Batch batch(
      SftExamples split, SftPacking packing, long[] rows, long step, boolean isTrain)
      throws IOException {
    SftExamples.Example[][] ex = new SftExamples.Example[rows.length][];
    int longest = 1;
    for (int b = 0; b < rows.length; b++) {
      ex[b] = examples(split, packing, rows[b]);
      longest = Math.max(longest, length(ex[b]));
    }
    int seq = (longest + padToMultipleOf - 1) / padToMultipleOf * padToMultipleOf;
    if (maxSeqLength > 0) {
      seq = Math.min(seq, Math.max(maxSeqLength, longest));
    }
    int n = rows.length * seq;
    int[] ids = new int[n];
    int[] mask = new int[n];
    int[] labels = new int[n];
    int[] segments = packing != null ? new int[n] : null;
    Arrays.fill(ids, padId);
    Arrays.fill(labels, SftExamples.IGNORE_INDEX);
    for (int b = 0; b < rows.length; b++) {
      int at = b * seq;
      for (int k = 0; k < ex[b].length; k++) {
        SftExamples.Example e = ex[b][k];
        int len = length(e);
        System.arraycopy(e.inputIds(), 0, ids, at, len);
        System.arraycopy(e.labels(), 0, labels, at, len);
        Arrays.fill(mask, at, at + len, 1);
        if (segments != null) {
          Arrays.fill(segments, at, at + len, k + 1);
          labels[at] = SftExamples.IGNORE_INDEX; // the previous example must not predict it
        }
        at += len;
      }
    }
    // sample ids: the global row ids, which key the LoRA dropout masks whatever rank reads them
    return new Batch(rows.length, seq, ids, mask, labels, rows.clone(), step, isTrain, segments);
  }

  /** The examples of row {@code row}: itself, or those packed into it. */
  private static SftExamples.Example[] examples(SftExamples split, SftPacking packing, long row)
      throws IOException {
    if (packing == null) {
      return new SftExamples.Example[] {split.read(row)};
    }
    int[] ids = packing.examples(Math.toIntExact(row));
    SftExamples.Example[] out = new SftExamples.Example[ids.length];
    for (int k = 0; k < ids.length; k++) {
      out[k] = split.read(ids[k]);
    }
    return out;
  }

  @Override
  public int length(long row) throws IOException {
    return trainPacking != null
        ? trainPacking.tokens(Math.toIntExact(row))
        : length(train.read(row));
  }

  private int length(SftExamples.Example[] packed) {
    int sum = 0;
    for (SftExamples.Example e : packed) {
      sum += length(e);
    }
    return sum;
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
    return train.rows()
        + " train / "
        + validation.rows()
        + " validation examples"
        + (maxSeqLength > 0 ? " of at most " + maxSeqLength + " tokens" : "")
        + (trainPacking != null
            ? String.format(
                ", packed into %d rows (%.1f%% of their %d tokens filled)",
                trainPacking.rows(),
                100.0 * trainPacking.totalTokens() / ((long) trainPacking.rows() * maxSeqLength),
                maxSeqLength)
            : "")
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
