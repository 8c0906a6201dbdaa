package dev.danlu.data.shard;

import java.io.IOException;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.List;
import org.apache.arrow.memory.BufferAllocator;

/**
 * Splits a stream of blocks into shard files of at most {@code maxRows} rows ("parts"), each
 * written under a temporary name and committed (renamed) only once complete, so a crashed or
 * retried writer never leaves a truncated file under a final name.
 */
public final class RollingShardWriter implements AutoCloseable {
  /** Where part files go: open a temporary file, then commit or abort it. */
  public interface PartStore {
    WritableByteChannel openTemp(int part) throws IOException;

    void commit(int part) throws IOException;

    void abort(int part);
  }

  /** A committed part. */
  public record Part(int part, long rows, long bytes, String sha256) {}

  private final BufferAllocator allocator;
  private final ShardMeta meta;
  private final long maxRows;
  private final PartStore store;
  private final List<Part> parts = new ArrayList<>();
  private ShardWriter current;
  private DigestingChannel channel;

  public RollingShardWriter(
      BufferAllocator allocator, ShardMeta meta, long maxRows, PartStore store) {
    if (maxRows <= 0) {
      throw new IllegalArgumentException("maxRows must be positive");
    }
    this.allocator = allocator;
    this.meta = meta;
    this.maxRows = maxRows;
    this.store = store;
  }

  /** Rows per shard for a target file size in bytes (at least one). */
  public static long rowsForTargetBytes(long targetBytes, int blockSize) {
    return Math.max(1, targetBytes / (4L * blockSize));
  }

  public void write(int[] block) throws IOException {
    if (current == null) {
      channel = new DigestingChannel(store.openTemp(parts.size()));
      current = new ShardWriter(allocator, meta, channel);
    }
    current.write(block);
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
