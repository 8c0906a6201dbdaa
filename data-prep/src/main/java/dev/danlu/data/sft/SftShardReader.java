package dev.danlu.data.sft;

import dev.danlu.data.shard.ShardFormatException;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.ipc.ArrowFileReader;
import org.apache.arrow.vector.ipc.message.ArrowBlock;

/**
 * Random access to the examples of one SFT shard. Opening checks format, version, columns, max
 * length and (if given) the tokenizer hash. Row {@code r} lives in batch {@code r / batchRows}; a
 * read loads that batch (at most ~256 KiB) unless it is among the few decoded batches kept (an LRU
 * of {@value #CACHED_BATCHES}), so sequential reads cost one load per batch and shuffled reads one
 * small load per row.
 */
public final class SftShardReader implements AutoCloseable {
  static final int CACHED_BATCHES = 4;

  /** One decoded batch: row i is {@code ids[off[i]..off[i+1])}. */
  private record Batch(int[] off, int[] ids, int[] labels) {}

  private final String name;
  private final BufferAllocator allocator;
  private final ArrowFileReader reader;
  private final SftShardMeta meta;
  private final List<ArrowBlock> blocks;
  private final long rows;
  private final Map<Integer, Batch> cache =
      new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Integer, Batch> e) {
          return size() > CACHED_BATCHES;
        }
      };

  private SftShardReader(
      String name,
      BufferAllocator allocator,
      ArrowFileReader reader,
      int maxSeqLength,
      String tokenizerSha256)
      throws IOException {
    this.name = name;
    this.allocator = allocator;
    this.reader = reader;
    this.meta = SftShardMeta.fromSchema(reader.getVectorSchemaRoot().getSchema(), name);
    if (maxSeqLength > 0 && meta.maxSeqLength() != maxSeqLength) {
      throw new ShardFormatException(
          name
              + ": max_seq_length "
              + meta.maxSeqLength()
              + " in the shard, but "
              + maxSeqLength
              + " expected (the manifest); the dataset is damaged, re-run prep-sft");
    }
    if (tokenizerSha256 != null && !tokenizerSha256.equals(meta.tokenizerSha256())) {
      throw new ShardFormatException(
          name
              + ": made with tokenizer sha256 "
              + meta.tokenizerSha256()
              + ", but the tokenizer in use has sha256 "
              + tokenizerSha256
              + "; re-run prep-sft with this tokenizer or use the matching tokenizer");
    }
    this.blocks = reader.getRecordBlocks();
    long n = 0;
    if (!blocks.isEmpty()) {
      Batch last = load(blocks.size() - 1);
      n = (long) (blocks.size() - 1) * meta.batchRows() + (last.off().length - 1);
    }
    rows = n;
  }

  /**
   * Opens a local shard; memory comes from a child of {@code parent}.
   *
   * @param maxSeqLength expected max length, or 0 to accept any
   * @param tokenizerSha256 expected tokenizer hash, or null to accept any
   */
  public static SftShardReader open(
      BufferAllocator parent, Path file, int maxSeqLength, String tokenizerSha256)
      throws IOException {
    BufferAllocator child = parent.newChildAllocator("sft-reader:" + file, 0, Long.MAX_VALUE);
    FileChannel channel = null;
    ArrowFileReader reader = null;
    try {
      channel = FileChannel.open(file, StandardOpenOption.READ);
      reader = new ArrowFileReader(channel, child);
      return new SftShardReader(file.toString(), child, reader, maxSeqLength, tokenizerSha256);
    } catch (IOException | RuntimeException e) {
      if (reader != null) {
        reader.close();
      } else if (channel != null) {
        channel.close();
      }
      child.close();
      if (e instanceof org.apache.arrow.vector.ipc.InvalidArrowFileException
          || e.getCause() instanceof org.apache.arrow.vector.ipc.InvalidArrowFileException) {
        throw new ShardFormatException(file + ": not an Arrow IPC file (" + e.getMessage() + ")");
      }
      throw e;
    }
  }

  private Batch load(int batch) throws IOException {
    Batch b = cache.get(batch);
    if (b != null) {
      return b;
    }
    if (!reader.loadRecordBatch(blocks.get(batch))) {
      throw new ShardFormatException(name + ": cannot load record batch " + batch);
    }
    VectorSchemaRoot root = reader.getVectorSchemaRoot();
    int n = root.getRowCount();
    boolean last = batch == blocks.size() - 1;
    if (n > meta.batchRows() || (!last && n != meta.batchRows()) || n == 0) {
      throw new ShardFormatException(
          name
              + ": record batch "
              + batch
              + " has "
              + n
              + " rows; danlu SFT shards have "
              + meta.batchRows()
              + " per batch (fewer only in the last)");
    }
    ListVector idsList = (ListVector) root.getVector(SftShardMeta.INPUT_IDS);
    ListVector labList = (ListVector) root.getVector(SftShardMeta.LABELS);
    int[] off = new int[n + 1];
    for (int i = 0; i < n; i++) {
      int s = idsList.getElementStartIndex(i);
      int e = idsList.getElementEndIndex(i);
      int len = e - s;
      if (labList.getElementEndIndex(i) - labList.getElementStartIndex(i) != len) {
        throw new ShardFormatException(
            name + ": row " + ((long) batch * meta.batchRows() + i) + ": labels length differs");
      }
      off[i + 1] = off[i] + len;
    }
    int[] ids = copy((IntVector) idsList.getDataVector(), idsList.getElementStartIndex(0), off[n]);
    int[] lab = copy((IntVector) labList.getDataVector(), labList.getElementStartIndex(0), off[n]);
    b = new Batch(off, ids, lab);
    cache.put(batch, b);
    return b;
  }

  private static int[] copy(IntVector v, int from, int n) {
    int[] out = new int[n];
    for (int i = 0; i < n; i++) {
      out[i] = v.get(from + i);
    }
    return out;
  }

  public SftShardMeta meta() {
    return meta;
  }

  public long rows() {
    return rows;
  }

  public SftExamples.Example read(long row) throws IOException {
    if (row < 0 || row >= rows) {
      throw new IndexOutOfBoundsException(name + ": row " + row + " of " + rows);
    }
    Batch b = load((int) (row / meta.batchRows()));
    int i = (int) (row % meta.batchRows());
    int s = b.off()[i];
    int e = b.off()[i + 1];
    return new SftExamples.Example(
        java.util.Arrays.copyOfRange(b.ids(), s, e),
        java.util.Arrays.copyOfRange(b.labels(), s, e));
  }

  @Override
  public void close() throws IOException {
    cache.clear();
    try (allocator) {
      reader.close();
    }
  }
}
