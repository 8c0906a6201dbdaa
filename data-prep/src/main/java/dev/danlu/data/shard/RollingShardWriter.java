package dev.danlu.data.shard;

import java.io.IOException;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.List;
import org.apache.arrow.memory.BufferAllocator;

/**
 * Splits a stream of rows into shard files of at most {@code maxRows} rows ("parts"), each written
 * under a temporary name and committed (renamed) only once complete, so a crashed or retried writer
 * never leaves a truncated file under a final name. The rows are pretraining blocks ({@link
 * #blocks}, written by {@link ShardWriter}) or SFT examples (the SFT shard writer); {@code R} is
 * their type.
 */
public final class RollingShardWriter<R> implements AutoCloseable {
  /** Where part files go: open a temporary file, then commit or abort it. */
  public interface PartStore {
    WritableByteChannel openTemp(int part) throws IOException;

    void commit(int part) throws IOException;

    void abort(int part);
  }

  /** One part file's writer: rows in, an Arrow IPC file out. */
  public interface PartWriter<R> extends AutoCloseable {
    void write(R row) throws IOException;

    long rows();

    /** Finishes the file. */
    @Override
    void close() throws IOException;

    /** Gives up on an unfinished file (its bytes are discarded by the store). */
    void abort();
  }

  /** Opens a part writer on a channel. */
  @FunctionalInterface
  public interface PartFactory<R> {
    PartWriter<R> open(WritableByteChannel out) throws IOException;
  }

  /** A committed part. */
  public record Part(int part, long rows, long bytes, String sha256) {}

  private final PartFactory<R> factory;
  private final long maxRows;
  private final PartStore store;
  private final List<Part> parts = new ArrayList<>();
  private PartWriter<R> current;
  private DigestingChannel channel;

  public RollingShardWriter(PartFactory<R> factory, long maxRows, PartStore store) {
    if (maxRows <= 0) {
      throw new IllegalArgumentException("maxRows must be positive");
    }
    this.factory = factory;
    this.maxRows = maxRows;
    this.store = store;
  }

  /** Pretraining blocks in {@link ShardWriter} files. */
  public static RollingShardWriter<int[]> blocks(
      BufferAllocator allocator, ShardMeta meta, long maxRows, PartStore store) {
    return new RollingShardWriter<>(out -> new ShardWriter(allocator, meta, out), maxRows, store);
  }

  /** Rows per shard for a target file size in bytes (at least one). */
  public static long rowsForTargetBytes(long targetBytes, int blockSize) {
    return Math.max(1, targetBytes / (4L * blockSize));
  }

  /** The index of the part the next row goes to (parts are numbered from 0 in write order). */
  public int currentPart() {
    return parts.size();
  }

  public void write(R row) throws IOException {
    if (current == null) {
      channel = new DigestingChannel(store.openTemp(parts.size()));
      current = factory.open(channel);
    }
    current.write(row);
    if (current.rows() == maxRows) {
      commitCurrent();
    }
  }

  private void commitCurrent() throws IOException {
    long rows = current.rows();
    current.close();
    current = null;
    int part = parts.size();
    store.commit(part);
    parts.add(new Part(part, rows, channel.bytes(), channel.sha256()));
  }

  /** Commits the last part and returns all parts written. */
  public List<Part> finish() throws IOException {
    if (current != null) {
      commitCurrent();
    }
    return List.copyOf(parts);
  }

  /** Aborts an unfinished part (after a failure); committed parts stay. */
  @Override
  public void close() {
    if (current != null) {
      current.abort();
      current = null;
      store.abort(parts.size());
    }
  }
}
