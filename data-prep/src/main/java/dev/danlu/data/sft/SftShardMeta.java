package dev.danlu.data.sft;

import dev.danlu.data.shard.ShardFormatException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;

/**
 * Schema and metadata of an instruction-data shard (docs/data-format.md, "SFT shards"): columns
 * {@code input_ids} and {@code labels}, both {@code list<int32>} (non-nullable), of equal length
 * per row, not padded; metadata keys {@code danlu.*} as strings.
 *
 * @param batchRows rows per record batch; every batch but the last is full (random access by row)
 * @param extra informational keys (source, split), not checked
 */
public record SftShardMeta(
    int maxSeqLength,
    String tokenizerSha256,
    int bosId,
    int eosId,
    int padId,
    int batchRows,
    Map<String, String> extra) {
  public static final String INPUT_IDS = "input_ids";
  public static final String LABELS = "labels";
  public static final String FORMAT = "danlu-sft";
  public static final int FORMAT_VERSION = 1;

  static final String K_FORMAT = "danlu.format";
  static final String K_VERSION = "danlu.format_version";
  static final String K_MAX_LEN = "danlu.max_seq_length";
  static final String K_TOKENIZER = "danlu.tokenizer_sha256";
  static final String K_BOS = "danlu.bos_id";
  static final String K_EOS = "danlu.eos_id";
  static final String K_PAD = "danlu.pad_id";
  static final String K_BATCH = "danlu.batch_rows";
  private static final Set<String> KNOWN =
      Set.of(K_FORMAT, K_VERSION, K_MAX_LEN, K_TOKENIZER, K_BOS, K_EOS, K_PAD, K_BATCH);

  public SftShardMeta {
    Objects.requireNonNull(tokenizerSha256, "tokenizerSha256");
    if (maxSeqLength <= 0 || batchRows <= 0) {
      throw new IllegalArgumentException("maxSeqLength and batchRows must be positive");
    }
    extra = Map.copyOf(extra);
  }

  /**
   * Rows per batch so that a full batch of maximal rows is at most about 256 KiB: a random read
   * (the trainer's shuffled order) loads one batch.
   */
  public static int defaultBatchRows(int maxSeqLength) {
    return Math.max(1, (256 << 10) / (8 * maxSeqLength));
  }

  /** Rows per part for a target file size: every row counted at max_seq_length (an upper bound). */
  public static long rowsForTargetBytes(long targetBytes, int maxSeqLength) {
    return Math.max(1, targetBytes / (8L * maxSeqLength));
  }

  public Schema schema() {
    Map<String, String> md = new LinkedHashMap<>();
    md.put(K_FORMAT, FORMAT);
    md.put(K_VERSION, Integer.toString(FORMAT_VERSION));
    md.put(K_MAX_LEN, Integer.toString(maxSeqLength));
    md.put(K_TOKENIZER, tokenizerSha256);
    md.put(K_BOS, Integer.toString(bosId));
    md.put(K_EOS, Integer.toString(eosId));
    md.put(K_PAD, Integer.toString(padId));
    md.put(K_BATCH, Integer.toString(batchRows));
    extra.forEach((k, v) -> md.put("danlu." + k, v));
    return new Schema(List.of(listField(INPUT_IDS), listField(LABELS)), md);
  }

  private static Field listField(String name) {
    Field item = new Field("item", FieldType.notNullable(new ArrowType.Int(32, true)), null);
    return new Field(name, FieldType.notNullable(new ArrowType.List()), List.of(item));
  }

  /** Parses and validates a shard's schema; {@code where} names the file in messages. */
  public static SftShardMeta fromSchema(Schema schema, String where) {
    Map<String, String> md = schema.getCustomMetadata();
    String format = md == null ? null : md.get(K_FORMAT);
    if (!FORMAT.equals(format)) {
      throw new ShardFormatException(
          where
              + ": not a danlu instruction-data shard (schema metadata "
              + K_FORMAT
              + " = "
              + format
              + ", expected "
              + FORMAT
              + "); prepare SFT data with `danlu prep-sft`, not `danlu prep`");
    }
    int version = intKey(md, K_VERSION, where);
    if (version != FORMAT_VERSION) {
      throw new ShardFormatException(
          where
              + ": SFT shard format version "
              + version
              + ", this reader understands "
              + FORMAT_VERSION
              + "; re-run prep-sft with this danlu version");
    }
    List<Field> f = schema.getFields();
    if (f.size() != 2
        || !f.get(0).getName().equals(INPUT_IDS)
        || !f.get(1).getName().equals(LABELS)
        || !isIntList(f.get(0))
        || !isIntList(f.get(1))) {
      throw new ShardFormatException(
          where + ": expected columns input_ids and labels of list<int32>, found " + f);
    }
    Map<String, String> extra = new LinkedHashMap<>();
    md.forEach(
        (k, v) -> {
          if (k.startsWith("danlu.") && !KNOWN.contains(k)) {
            extra.put(k.substring("danlu.".length()), v);
          }
        });
    return new SftShardMeta(
        intKey(md, K_MAX_LEN, where),
        md.getOrDefault(K_TOKENIZER, ""),
        intKey(md, K_BOS, where),
        intKey(md, K_EOS, where),
        intKey(md, K_PAD, where),
        intKey(md, K_BATCH, where),
        extra);
  }

  private static boolean isIntList(Field f) {
    return f.getType() instanceof ArrowType.List
        && f.getChildren().size() == 1
        && f.getChildren().get(0).getType().equals(new ArrowType.Int(32, true));
  }

  private static int intKey(Map<String, String> md, String key, String where) {
    String v = md.get(key);
    try {
      return Integer.parseInt(v);
    } catch (NumberFormatException | NullPointerException e) {
      throw new ShardFormatException(
          where + ": schema metadata " + key + " = " + v + " is not an int");
    }
  }
}
