package dev.danlu.data.sft;

import java.io.IOException;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.List;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.ipc.ArrowFileWriter;

/**
 * Writes examples into one Arrow IPC file in batches of {@link SftShardMeta#batchRows()} rows,
 * every batch full except the last. Memory: one batch, in a child allocator closed with the writer.
 */
public final class SftShardWriter
    implements dev.danlu.data.shard.RollingShardWriter.PartWriter<SftExamples.Example> {
  private final SftShardMeta meta;
  private final BufferAllocator allocator;
  private final VectorSchemaRoot root;
  private final ArrowFileWriter writer;
  private final List<SftExamples.Example> pending = new ArrayList<>();
  private long rows;
  private boolean closed;

  public SftShardWriter(BufferAllocator parent, SftShardMeta meta, WritableByteChannel out)
      throws IOException {
    this.meta = meta;
    this.allocator = parent.newChildAllocator("sft-shard-writer", 0, Long.MAX_VALUE);
    try {
      this.root = VectorSchemaRoot.create(meta.schema(), allocator);
      this.writer = new ArrowFileWriter(root, null, out);
      writer.start();
    } catch (IOException | RuntimeException e) {
      allocator.close();
      throw e;
    }
  }

  /** Appends one example (at most max_seq_length tokens). */
  @Override
  public void write(SftExamples.Example e) throws IOException {
    if (e.length() > meta.maxSeqLength() || e.length() == 0) {
      throw new IllegalArgumentException(
          "example of " + e.length() + " tokens; max_seq_length is " + meta.maxSeqLength());
    }
    pending.add(e);
    rows++;
    if (pending.size() == meta.batchRows()) {
      flush();
    }
  }

  private void flush() throws IOException {
    int n = pending.size();
    int total = 0;
    for (SftExamples.Example e : pending) {
      total += e.length();
    }
    fill((ListVector) root.getVector(SftShardMeta.INPUT_IDS), n, total, false);
    fill((ListVector) root.getVector(SftShardMeta.LABELS), n, total, true);
    root.setRowCount(n);
    writer.writeBatch();
    pending.clear();
  }

  private void fill(ListVector list, int n, int total, boolean labels) {
    list.clear();
    list.setInitialCapacity(n);
    list.allocateNew();
    IntVector items = (IntVector) list.getDataVector();
    items.allocateNew(Math.max(1, total));
    int at = 0;
    for (int i = 0; i < n; i++) {
      int[] v = labels ? pending.get(i).labels() : pending.get(i).inputIds();
      int start = list.startNewValue(i);
      for (int j = 0; j < v.length; j++) {
        items.set(start + j, v[j]);
      }
      list.endValue(i, v.length);
      at += v.length;
    }
    items.setValueCount(at);
    list.setValueCount(n);
  }

  @Override
  public long rows() {
    return rows;
  }

  /** Writes the last batch and the footer, then frees memory and closes the channel. */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    try (allocator;
        root;
        writer) {
      if (!pending.isEmpty()) {
        flush();
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
      // the partial file is deleted by the caller
    }
    allocator.close();
  }
}
