package dev.danlu.train.data;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import dev.danlu.data.shard.ShardDataset;
import dev.danlu.data.shard.ShardReader;
import dev.danlu.train.model.Batch;
import java.io.IOException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;

/**
 * The training view of a prepared shard dataset: its committed manifest, the train and validation
 * splits as random-access block arrays, and micro-batches of given global row ids. Blocks are full
 * {@code block_size} windows (group_texts), so a batch has no padding and every label counts, as in
 * the reference run_clm_pt.
 */
public final class ShardBlocks implements TrainData {
  private final Path root;
  private final Manifest manifest;
  private final String manifestSha256;
  private final BufferAllocator allocator;
  private final ShardDataset train;
  private final ShardDataset validation;
  private final int vocabLimit;

  private ShardBlocks(
      Path root,
      Manifest manifest,
      BufferAllocator allocator,
      ShardDataset train,
      ShardDataset validation,
      int vocabLimit) {
    this.root = root;
    this.manifest = manifest;
    this.manifestSha256 = sha256(ManifestIo.toJson(manifest.withoutTimestamps()));
    this.allocator = allocator;
    this.train = train;
    this.validation = validation;
    this.vocabLimit = vocabLimit;
  }

  /**
   * Opens both splits of the dataset at {@code root}.
   *
   * @param blockSize the block size the run expects; 0 takes the dataset's
   * @param tokenizerSha256 the tokenizer in use, or null when the run names none
   * @param vocabLimit the model's vocabulary size: a token id at or above it is refused when read
   */
  public static ShardBlocks open(Path root, int blockSize, String tokenizerSha256, int vocabLimit)
      throws IOException {
    Manifest m = ManifestIo.readCurrent(root);
    int block = blockSize > 0 ? blockSize : m.params().blockSize();
    if (block != m.params().blockSize()) {
      throw new IOException(
          root
              + ": the dataset was prepared with block size "
              + m.params().blockSize()
              + " but block_size="
              + blockSize
              + " was asked; set block_size: 0 to take the dataset's or re-run prep");
    }
    BufferAllocator alloc = new RootAllocator();
    ShardReader.Expect expect = new ShardReader.Expect(block, tokenizerSha256);
    ShardDataset tr = null;
    try {
      tr = new ShardDataset(alloc, root, m, Manifest.TRAIN, expect);
      ShardDataset va = new ShardDataset(alloc, root, m, Manifest.VALIDATION, expect);
      return new ShardBlocks(root, m, alloc, tr, va, vocabLimit);
    } catch (IOException | RuntimeException e) {
      if (tr != null) {
        tr.close();
      }
      alloc.close();
      throw e;
    }
  }

  public Manifest manifest() {
    return manifest;
  }

  /** sha256 of the manifest without its timestamp: identifies the dataset version's content. */
  public String manifestSha256() {
    return manifestSha256;
  }

  public int blockSize() {
    return manifest.params().blockSize();
  }

  @Override
  public long version() {
    return manifest.version();
  }

  @Override
  public String sha256() {
    return manifestSha256;
  }

  @Override
  public String describe() {
    return trainRows()
        + " train / "
        + validationRows()
        + " validation blocks of "
        + blockSize()
        + " tokens";
  }

  @Override
  public long trainRows() {
    return train.rows();
  }

  @Override
  public long validationRows() {
    return validation.rows();
  }

  /** A training micro-batch of train rows {@code rows}; labels are the inputs (HF shifts them). */
  @Override
  public Batch trainBatch(long[] rows, long step) throws IOException {
    return batch(train, "train", rows, step, true);
  }

  /** An evaluation batch of validation rows (no dropout). */
  @Override
  public Batch validationBatch(long[] rows) throws IOException {
    return batch(validation, "validation", rows, 0, false);
  }

  private Batch batch(ShardDataset split, String name, long[] rows, long step, boolean train)
      throws IOException {
    int seq = blockSize();
    int[] ids = new int[rows.length * seq];
    int[] row = new int[seq];
    for (int b = 0; b < rows.length; b++) {
      split.readRow(rows[b], row);
      for (int t = 0; t < seq; t++) {
        if (row[t] < 0 || row[t] >= vocabLimit) {
          throw new IOException(
              root
                  + ": "
                  + name
                  + " row "
                  + rows[b]
                  + " position "
                  + t
                  + " has token id "
                  + row[t]
                  + ", outside the model's vocabulary of "
                  + vocabLimit
                  + "; the shards were made with another tokenizer than the model's (re-run prep,"
                  + " or train embed_tokens and lm_head so the vocabulary is resized)");
        }
      }
      System.arraycopy(row, 0, ids, b * seq, seq);
    }
    // A train row's sample id is its global row id: it keys the LoRA dropout masks, so the same
    // sample gets the same mask on every rank and micro-batch layout.
    long[] sampleIds = train ? rows.clone() : null;
    return new Batch(rows.length, seq, ids, null, ids.clone(), sampleIds, step, train);
  }

  static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public void close() throws IOException {
    try {
      train.close();
      validation.close();
    } finally {
      allocator.close();
    }
  }
}
