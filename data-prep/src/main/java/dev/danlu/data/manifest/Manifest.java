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
  /**
   * 2: shards list every source they hold ({@code sources}), sources name their packing group
   * ({@code group}). Version 1 (one source per shard, no groups) is still read.
   */
  public static final int FORMAT_VERSION = 2;

  /** Format versions {@link ManifestIo} reads. */
  public static final java.util.Set<Integer> READABLE_VERSIONS = java.util.Set.of(1, 2);

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
   * @param sources paths of the source files whose blocks it holds, in row order (one for a file
   *     prepared on its own, several for a packing group; format version 1 wrote a single {@code
   *     source}, read here as a one-element list)
   */
  public record ShardEntry(
      String path,
      String split,
      long rows,
      long bytes,
      String sha256,
      @com.fasterxml.jackson.annotation.JsonAlias("source")
          @com.fasterxml.jackson.annotation.JsonFormat(
              with =
                  com.fasterxml.jackson.annotation.JsonFormat.Feature.ACCEPT_SINGLE_VALUE_AS_ARRAY)
          List<String> sources)
      implements java.io.Serializable {
    @com.fasterxml.jackson.annotation.JsonCreator
    public ShardEntry {
      sources = List.copyOf(sources);
    }

    /** A shard holding the blocks of one source. */
    @com.fasterxml.jackson.annotation.JsonCreator(
        mode = com.fasterxml.jackson.annotation.JsonCreator.Mode.DISABLED)
    public ShardEntry(
        String path, String split, long rows, long bytes, String sha256, String source) {
      this(path, split, rows, bytes, sha256, List.of(source));
    }
  }

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
   * @param shards relative paths of the shards holding this file's blocks
   * @param group the packing group the file was tokenized with (docs/data-format.md, "Packing
   *     groups"), null for a file prepared on its own (a big file, a skipped one, or one written by
   *     format version 1)
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
      List<String> shards,
      String group)
      implements java.io.Serializable {
    public static final String OK = "ok";
    public static final String SKIPPED = "skipped";

    @com.fasterxml.jackson.annotation.JsonCreator
    public SourceEntry {
      shards = List.copyOf(shards);
    }

    /** An entry of a file prepared on its own (no packing group). */
    @com.fasterxml.jackson.annotation.JsonCreator(
        mode = com.fasterxml.jackson.annotation.JsonCreator.Mode.DISABLED)
    public SourceEntry(
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
        List<String> shards) {
      this(
          path,
          size,
          mtime,
          sha256,
          status,
          skipReason,
          lines,
          tokens,
          blocks,
          droppedTokens,
          utf8Replacements,
          firstInvalidUtf8Offset,
          oversizedLines,
          shards,
          null);
    }

    /** The same entry with another size, mtime and group (the content is unchanged). */
    public SourceEntry withListing(long newSize, long newMtime, String newGroup) {
      return new SourceEntry(
          path,
          newSize,
          newMtime,
          sha256,
          status,
          skipReason,
          lines,
          tokens,
          blocks,
          droppedTokens,
          utf8Replacements,
          firstInvalidUtf8Offset,
          oversizedLines,
          shards,
          newGroup);
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
