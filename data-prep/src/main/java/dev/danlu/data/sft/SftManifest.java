package dev.danlu.data.sft;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * One committed version of an instruction dataset ({@code danlu prep-sft}), stored in the same
 * layout as prep's {@link Manifest} ({@code manifest.json} written last, {@code
 * manifests/manifest-N.json}, {@code shards/<params8>/<split>/*.arrow}); {@code format} tells the
 * two apart. Fields: docs/data-format.md, "SFT shards".
 *
 * @param shards train shards first, then validation, each in source path order, then part
 * @param sources every input file, in path order
 */
public record SftManifest(
    int formatVersion,
    String format,
    long version,
    String createdAt,
    Params params,
    SftCounts totals,
    long trainRows,
    long validationRows,
    List<Manifest.ShardEntry> shards,
    List<Source> sources) {
  /**
   * 2: shard entries list their sources ({@code sources}, shared with prep's manifest); version 1
   * ({@code source}) is still read.
   */
  public static final int FORMAT_VERSION = 2;

  public static final String FORMAT = SftShardMeta.FORMAT;

  private static final ObjectMapper JSON =
      new ObjectMapper()
          .enable(SerializationFeature.INDENT_OUTPUT)
          .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
          .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);

  public SftManifest {
    Objects.requireNonNull(params, "params");
    Objects.requireNonNull(totals, "totals");
    shards = List.copyOf(shards);
    sources = List.copyOf(sources);
  }

  /**
   * What shard content depends on besides the records.
   *
   * @param padId the id the trainer pads with: the tokenizer's pad piece (32000 {@code <pad>} in
   *     Chinese-LLaMA-2), or 0 ({@code <unk>}) when the tokenizer has none (LLaMA-2)
   * @param template the prompt template ({@code alpaca2})
   * @param validationFraction share of records of the --input files sent to validation
   */
  public record Params(
      String tokenizerSha256,
      String tokenizerFile,
      int vocabSize,
      int bosId,
      int eosId,
      int padId,
      int maxSeqLength,
      String template,
      double validationFraction) {
    public boolean sameContentAs(Params o) {
      return tokenizerSha256.equals(o.tokenizerSha256)
          && bosId == o.bosId
          && eosId == o.eosId
          && padId == o.padId
          && maxSeqLength == o.maxSeqLength
          && template.equals(o.template)
          && Double.compare(validationFraction, o.validationFraction) == 0;
    }
  }

  /**
   * One input file.
   *
   * @param role {@code train} (records split by --validation-fraction) or {@code validation} (a
   *     --validation-file: every record to validation)
   * @param sha256 content hash
   * @param badRecords the first few bad-record messages (with --skip-bad-records)
   * @param shards relative paths of this file's shards
   */
  public record Source(
      String path,
      long size,
      long mtime,
      String sha256,
      String role,
      SftCounts counts,
      long trainRows,
      long validationRows,
      List<String> badRecords,
      List<String> shards)
      implements java.io.Serializable {
    public Source {
      badRecords = List.copyOf(badRecords);
      shards = List.copyOf(shards);
    }
  }

  public List<Manifest.ShardEntry> shardsOf(String split) {
    return shards.stream().filter(s -> s.split().equals(split)).toList();
  }

  public SftManifest withoutTimestamps() {
    return new SftManifest(
        formatVersion,
        format,
        version,
        "",
        params,
        totals,
        trainRows,
        validationRows,
        shards,
        sources);
  }

  public static byte[] toJson(SftManifest m) {
    try {
      return JSON.writeValueAsBytes(m);
    } catch (IOException e) {
      throw new IllegalStateException("cannot serialize manifest", e);
    }
  }

  /** Parses a manifest; {@code where} names the file in messages. */
  public static SftManifest fromJson(byte[] json, String where) throws IOException {
    SftManifest m;
    try {
      var tree = JSON.readTree(json);
      if (tree == null || !FORMAT.equals(tree.path("format").asText(null))) {
        throw new IOException(
            where
                + ": not an instruction dataset (no \"format\": \""
                + FORMAT
                + "\"); prepare one with `danlu prep-sft`"
                + (tree != null && tree.has("params") && tree.path("params").has("blockSize")
                    ? " (this is a pretraining dataset made by `danlu prep`)"
                    : ""));
      }
      m = JSON.treeToValue(tree, SftManifest.class);
    } catch (com.fasterxml.jackson.core.JacksonException e) {
      throw new IOException(where + ": not a valid danlu SFT manifest: " + e.getMessage(), e);
    }
    if (m.formatVersion() != FORMAT_VERSION && m.formatVersion() != 1) {
      throw new IOException(
          where
              + ": SFT manifest format version "
              + m.formatVersion()
              + ", this danlu understands 1 and "
              + FORMAT_VERSION);
    }
    return m;
  }

  /** Reads the committed manifest of a local dataset directory. */
  public static SftManifest readCurrent(Path datasetRoot) throws IOException {
    Path p = datasetRoot.resolve(ManifestIo.CURRENT);
    try {
      return fromJson(Files.readAllBytes(p), p.toString());
    } catch (NoSuchFileException e) {
      throw new NoSuchFileException(
          p.toString(),
          null,
          "no committed instruction dataset here; run `danlu prep-sft --output "
              + datasetRoot
              + "`");
    }
  }
}
