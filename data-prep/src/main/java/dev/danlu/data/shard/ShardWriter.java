package dev.danlu.data.shard;

import java.io.IOException;
import java.nio.channels.WritableByteChannel;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.FixedSizeListVector;
import org.apache.arrow.vector.ipc.ArrowFileWriter;

/**
 * Writes blocks into one Arrow IPC file: batches of {@link ShardMeta#batchRows()} rows, every batch
 * full except the last. Memory is at most one batch, in a child allocator closed with the writer.
 */
public final class ShardWriter implements RollingShardWriter.PartWriter<int[]> {
  private static final int FIRST_BATCH_ROWS = 64;

  private final ShardMeta meta;
  private final BufferAllocator allocator;
  private final VectorSchemaRoot root;
  private final FixedSizeListVector list;
  private final IntVector ids;
  private final ArrowFileWriter writer;
  private int batchFill;
  private long rows;
  private boolean closed;

  public ShardWriter(BufferAllocator parent, ShardMeta meta, WritableByteChannel out)
      throws IOException {
    this.meta = meta;
    this.allocator = parent.newChildAllocator("shard-writer", 0, Long.MAX_VALUE);
    try {
      this.root = VectorSchemaRoot.create(meta.schema(), allocator);
      this.list = (FixedSizeListVector) root.getVector(ShardMeta.COLUMN);
      this.ids = (IntVector) list.getDataVector();
      this.writer = new ArrowFileWriter(root, null, out);
      writer.start();
      allocateBatch(Math.min(meta.batchRows(), FIRST_BATCH_ROWS));
    } catch (IOException | RuntimeException e) {
      allocator.close();
      throw e;
    }
  }

  /**
   * The first batch starts small and doubles as it fills: a shard of a small source file holds a
   * few dozen rows, and allocating (and zeroing) a full 2 MB batch for each was a measurable part
   * of prep on corpora of many small files. Capacity does not show in the file: Arrow writes
   * buffers cut to the value count.
   */
  private void allocateBatch(int capacityRows) {
    list.setInitialCapacity(capacityRows);
    list.allocateNew();
    ids.allocateNew(capacityRows * meta.blockSize());
    batchFill = 0;
  }

  /** Appends one block of exactly {@code blockSize} ids. */
  @Override
  public void write(int[] block) throws IOException {
    if (block.length != meta.blockSize()) {
      throw new IllegalArgumentException(
          "block of " + block.length + " ids, shard block size is " + meta.blockSize());
    }
    while (batchFill >= list.getValueCapacity()
        || (batchFill + 1) * meta.blockSize() > ids.getValueCapacity()) {
      list.reAlloc();
    }
    int base = batchFill * meta.blockSize();
    for (int j = 0; j < block.length; j++) {
      ids.set(base + j, block[j]);
    }
    list.setNotNull(batchFill);
    batchFill++;
    rows++;
    if (batchFill == meta.batchRows()) {
      flushBatch();
      allocateBatch(meta.batchRows());
    }
  }

  private void flushBatch() throws IOException {
    ids.setValueCount(batchFill * meta.blockSize());
    list.setValueCount(batchFill);
    root.setRowCount(batchFill);
    writer.writeBatch();
    batchFill = 0;
  }

  @Override
  public long rows() {
    return rows;
  }

  /** Writes the last batch and the file footer, then frees memory and closes the channel. */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    try (allocator;
        root;
        writer) {
      if (batchFill > 0) {
        flushBatch();
      }
      writer.end();
    }
  }

  /** Frees memory and closes the channel without finishing the file (on failure). */
  @Override
  public void abort() {
    if (closed) {
      return;
    }
    closed = true;
    root.close();
    try {
      writer.close();
    } catch (RuntimeException e) {
      // The channel may already be broken; the partial file is deleted by the caller.
    }
    allocator.close();
  }
}
