package dev.danlu.data.manifest;

import java.util.List;
import java.util.Objects;

/**
 * One committed version of a dataset: everything needed to read it and to decide, on the next run,
 * what can be reused. Serialized by {@link ManifestIo}; the fields are described in {@code
 * docs/data-format.md}.
 *
 * @param formatVersion version of this JSON layout ({@link #FORMAT_VERSION})
 * @param version the dataset version, N in {@code manifests/manifest-N.json}, +1 per commit
 * @param createdAt ISO-8601 instant of the commit (ignored when comparing runs)
 * @param params the parameters every shard was made with; a run with other params is refused unless
 *     it rebuilds
 * @param shards every shard of this version, ordered by (split, source order, split, part)
 * @param sources every input file seen, in path order, including skipped ones
 */
public record Manifest(
    int formatVersion,
    long version,
    String createdAt,
    Params params,
    Totals totals,
    List<ShardEntry> shards,
    List<SourceEntry> sources) {
  public static final int FORMAT_VERSION = 1;
  public static final String TRAIN = "train";
  public static final String VALIDATION = "validation";

  public Manifest {
    Objects.requireNonNull(params, "params");
    Objects.requireNonNull(totals, "totals");
    shards = List.copyOf(shards);
    sources = List.copyOf(sources);
  }

  /**
   * What shards depend on besides the source bytes.
   *
   * @param tokenizerSha256 hex sha256 of the tokenizer file
   * @param tokenizerFile the tokenizer's file name (informational)
   * @param chunking {@code group1000} or {@code file}
   * @param utf8Policy {@code replace} or {@code fail}
   * @param maxLineBytes longer lines are skipped and counted
   */
  public record Params(
      String tokenizerSha256,
      String tokenizerFile,
      int vocabSize,
      int bosId,
      int eosId,
      int blockSize,
      String chunking,
      double validationFraction,
      String utf8Policy,
      int maxLineBytes) {
    /** The params that decide the content of shards (the tokenizer's file name does not). */
    public boolean sameContentAs(Params o) {
      return tokenizerSha256.equals(o.tokenizerSha256)
          && blockSize == o.blockSize
          && chunking.equals(o.chunking)
          && Double.compare(validationFraction, o.validationFraction) == 0
          && utf8Policy.equals(o.utf8Policy)
          && maxLineBytes == o.maxLineBytes
          && bosId == o.bosId
          && eosId == o.eosId;
    }
  }

  /** Sums over all sources (and shards for the block counts). */
  public record Totals(
      long files,
      long skippedFiles,
      long bytes,
      long lines,
      long tokens,
      long blocks,
      long trainBlocks,
      long validationBlocks,
      long droppedTokens,
      long utf8Replacements,
      long oversizedLines) {}

  /**
   * One Arrow shard file.
   *
   * @param path relative to the dataset root, '/'-separated
   * @param split {@link #TRAIN} or {@link #VALIDATION}
   * @param source path of the source file whose blocks it holds
   */
  public record ShardEntry(
      String path, String split, long rows, long bytes, String sha256, String source)
      implements java.io.Serializable {}

  /**
   * One input file.
   *
   * @param path the file's full URI as listed by the file system
   * @param mtime modification time, epoch milliseconds
   * @param sha256 content hash (null for a binary file, whose scan stops at the first NUL)
   * @param status {@code ok} or {@code skipped}
   * @param skipReason why it was skipped (null when ok)
   * @param utf8Replacements malformed UTF-8 sequences replaced by U+FFFD
   * @param firstInvalidUtf8Offset byte offset of the first malformed sequence, -1 if none
   * @param oversizedLines lines longer than {@link Params#maxLineBytes()}, skipped
   * @param shards relative paths of this file's shards
   */
  public record SourceEntry(
      String path,
      long size,
      long mtime,
      String sha256,
      String status,
      String skipReason,
      long lines,
      long tokens,
      long blocks,
      long droppedTokens,
      long utf8Replacements,
      long firstInvalidUtf8Offset,
      long oversizedLines,
      List<String> shards)
      implements java.io.Serializable {
    public static final String OK = "ok";
    public static final String SKIPPED = "skipped";

    public SourceEntry {
      shards = List.copyOf(shards);
    }
  }

  /** Shards of one split, in manifest order (the order of global row indices). */
  public List<ShardEntry> shardsOf(String split) {
    return shards.stream().filter(s -> s.split().equals(split)).toList();
  }

  /** The same manifest without what legitimately differs between equivalent runs. */
  public Manifest withoutTimestamps() {
    return new Manifest(formatVersion, version, "", params, totals, shards, sources);
  }
}
