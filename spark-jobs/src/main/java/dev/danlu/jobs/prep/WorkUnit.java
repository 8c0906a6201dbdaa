package dev.danlu.jobs.prep;

import dev.danlu.data.chunk.SplitChunker;
import dev.danlu.data.manifest.Manifest;
import java.io.Serializable;
import java.util.List;

/**
 * One shard-writing unit of tokenization: pieces of source files whose blocks go, in piece order,
 * into one set of shard parts (train and validation) named {@code <shardPrefix>-p<part>.arrow}. A
 * big file's byte range is a unit of one piece; a packing group is cut into units of whole files.
 * Spark tasks carry one or more units ({@link TokenizeStage#packTasks}).
 *
 * @param shardPrefix relative shard name prefix: {@code <path8>-<sha16>-s<split5>} for a big file's
 *     split, {@code g-<group16>-<unit8>} for a packing group's unit
 * @param group the packing group, null for a file prepared on its own
 */
record WorkUnit(String shardPrefix, String group, List<Piece> pieces) implements Serializable {
  WorkUnit {
    pieces = List.copyOf(pieces);
  }

  /** Bytes of input this unit owns, for scheduling and progress. */
  long estimatedBytes() {
    long b = 0;
    for (Piece p : pieces) {
      b += p.estimatedBytes();
    }
    return b;
  }

  /**
   * A line-aligned byte range of one source file and the lines it owns.
   *
   * @param fileSize size and mtime as listed; the task refuses a file that changed since
   */
  record Piece(
      String path,
      long fileSize,
      long mtime,
      String sha256,
      int splitIndex,
      SplitChunker.Range range,
      long estimatedBytes)
      implements Serializable {}

  /**
   * What a piece produced.
   *
   * @param shards relative paths of the unit's shards that hold this piece's blocks
   */
  record PieceResult(
      String path,
      int splitIndex,
      long lines,
      long tokens,
      long blocks,
      long droppedTokens,
      long bytesRead,
      List<String> shards)
      implements Serializable {}

  /** What the unit produced: per piece, and the shards it wrote (train, then validation). */
  record Result(String shardPrefix, List<PieceResult> pieces, List<Manifest.ShardEntry> shards)
      implements Serializable {}
}
