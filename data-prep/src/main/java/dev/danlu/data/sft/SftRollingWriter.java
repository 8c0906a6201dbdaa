package dev.danlu.data.sft;

import dev.danlu.data.shard.DigestingChannel;
import dev.danlu.data.shard.RollingShardWriter;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.apache.arrow.memory.BufferAllocator;

/**
 * Splits a stream of examples into SFT shard files ("parts") of at most {@code maxRows} rows, each
 * written under a temporary name and committed (renamed) once complete, like {@link
 * RollingShardWriter} for pretraining blocks.
 */
public final class SftRollingWriter implements AutoCloseable {
  private final BufferAllocator allocator;
  private final SftShardMeta meta;
  private final long maxRows;
  private final RollingShardWriter.PartStore store;
  private final List<RollingShardWriter.Part> parts = new ArrayList<>();
  private SftShardWriter current;
  private DigestingChannel channel;

  public SftRollingWriter(
      BufferAllocator allocator,
      SftShardMeta meta,
      long maxRows,
      RollingShardWriter.PartStore store) {
    if (maxRows <= 0) {
      throw new IllegalArgumentException("maxRows must be positive");
    }
    this.allocator = allocator;
    this.meta = meta;
    this.maxRows = maxRows;
    this.store = store;
  }

  /** Rows per part for a target file size: every row counted at max_seq_length (an upper bound). */
  public static long rowsForTargetBytes(long targetBytes, int maxSeqLength) {
    return Math.max(1, targetBytes / (8L * maxSeqLength));
  }

  public void write(SftExamples.Example e) throws IOException {
    if (current == null) {
      channel = new DigestingChannel(store.openTemp(parts.size()));
      current = new SftShardWriter(allocator, meta, channel);
    }
    current.write(e);
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
    parts.add(new RollingShardWriter.Part(part, rows, channel.bytes(), channel.sha256()));
  }

  /** Commits the last part and returns all parts written. */
  public List<RollingShardWriter.Part> finish() throws IOException {
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
