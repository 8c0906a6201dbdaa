package dev.danlu.data.shard;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.FixedSizeListVector;
import org.apache.arrow.vector.ipc.ArrowFileReader;
import org.apache.arrow.vector.ipc.message.ArrowBlock;

/**
 * Random access to the rows of one shard file. Opening checks the schema metadata against what the
 * caller expects and refuses a mismatch; one record batch is held in memory at a time.
 */
public final class ShardReader implements AutoCloseable {
  /**
   * What the caller's model and tokenizer need.
   *
   * @param tokenizerSha256 expected tokenizer hash, or null to accept any
   */
  public record Expect(int blockSize, String tokenizerSha256) {}

  private final String name;
  private final BufferAllocator allocator;
  private final ArrowFileReader reader;
  private final ShardMeta meta;
  private final List<ArrowBlock> blocks;
  private final long rows;
  private int loadedBatch = -1;
  private IntVector ids;

  private ShardReader(String name, BufferAllocator allocator, ArrowFileReader reader, Expect expect)
      throws IOException {
    this.name = name;
    this.allocator = allocator;
    this.reader = reader;
    this.meta = ShardMeta.fromSchema(reader.getVectorSchemaRoot().getSchema(), name);
    if (meta.blockSize() != expect.blockSize()) {
      throw new ShardFormatException(
          name
              + ": block size "
              + meta.blockSize()
              + " in the shard, but "
              + expect.blockSize()
              + " expected; prepare the data with --block-size "
              + expect.blockSize()
              + " or train with block size "
              + meta.blockSize());
    }
    if (expect.tokenizerSha256() != null
        && !expect.tokenizerSha256().equals(meta.tokenizerSha256())) {
      throw new ShardFormatException(
          name
              + ": made with tokenizer sha256 "
              + meta.tokenizerSha256()
              + ", but the tokenizer in use has sha256 "
              + expect.tokenizerSha256()
              + "; re-run prep with this tokenizer (--rebuild) or use the matching tokenizer");
    }
    this.blocks = reader.getRecordBlocks();
    if (blocks.isEmpty()) {
      rows = 0;
    } else {
      load(blocks.size() - 1);
      rows = (long) (blocks.size() - 1) * meta.batchRows() + currentBatchRows();
    }
  }

  /** Opens a local shard file; the reader's memory comes from a child of {@code parent}. */
  public static ShardReader open(BufferAllocator parent, Path file, Expect expect)
      throws IOException {
    BufferAllocator child = parent.newChildAllocator("shard-reader:" + file, 0, Long.MAX_VALUE);
    FileChannel channel = null;
    ArrowFileReader reader = null;
    try {
      channel = FileChannel.open(file, StandardOpenOption.READ);
      reader = new ArrowFileReader(channel, child);
      return new ShardReader(file.toString(), child, reader, expect);
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

  private int currentBatchRows() throws IOException {
    return reader.getVectorSchemaRoot().getRowCount();
  }

  private void load(int batch) throws IOException {
    if (batch == loadedBatch) {
      return;
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
              + " rows; danlu shards have "
              + meta.batchRows()
              + " per batch (fewer only in the last)");
    }
    ids = (IntVector) ((FixedSizeListVector) root.getVector(ShardMeta.COLUMN)).getDataVector();
    loadedBatch = batch;
  }

  public ShardMeta meta() {
    return meta;
  }

  public long rows() {
    return rows;
  }

  /** Copies row {@code row} into {@code dst} (length {@code blockSize}). */
  public void readRow(long row, int[] dst) throws IOException {
    if (row < 0 || row >= rows) {
      throw new IndexOutOfBoundsException(name + ": row " + row + " of " + rows);
    }
    load((int) (row / meta.batchRows()));
    int bs = meta.blockSize();
    int base = (int) (row % meta.batchRows()) * bs;
    for (int j = 0; j < bs; j++) {
      dst[j] = ids.get(base + j);
    }
  }

  @Override
  public void close() throws IOException {
    try (allocator) {
      reader.close();
    }
  }
}
