package dev.danlu.jobs.prep;

import dev.danlu.data.chunk.SplitChunker;
import java.io.Serializable;
import java.util.List;

/**
 * One tokenizing task: a line-aligned byte range of one source file and the lines it owns.
 *
 * @param fileSize size and mtime as scanned; the task refuses a file that changed since
 * @param shardPrefix relative shard path prefix, {@code <pathHash>-<contentSha>-s<split>}; parts
 *     append {@code -p<part>.arrow}
 */
record WorkUnit(
    String path,
    long fileSize,
    long mtime,
    String sha256,
    int splitIndex,
    SplitChunker.Range range,
    long estimatedBytes,
    String shardPrefix)
    implements Serializable {

  /** What the task produced. */
  record Result(
      String path,
      int splitIndex,
      long lines,
      long tokens,
      long blocks,
      long droppedTokens,
      long bytesRead,
      List<dev.danlu.data.manifest.Manifest.ShardEntry> shards)
      implements Serializable {}
}
