package dev.danlu.data.shard;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;

/**
 * What a shard says about itself, stored as Arrow schema metadata so any Arrow reader sees it.
 *
 * <p>Schema: one non-nullable column {@value #COLUMN} of {@code fixed_size_list<int32>[blockSize]}.
 * Metadata keys are listed in {@code docs/data-format.md}; readers check format, version, block
 * size and tokenizer hash before reading a row.
 *
 * @param batchRows rows per record batch; every batch but the last is full (random access relies on
 *     it)
 * @param extra informational keys (source hash, split), not checked
 */
public record ShardMeta(
    int blockSize,
    String tokenizerSha256,
    int bosId,
    int eosId,
    int batchRows,
    Map<String, String> extra) {
  public static final String COLUMN = "input_ids";
  public static final String FORMAT = "danlu-blocks";
  public static final int FORMAT_VERSION = 1;

  static final String K_FORMAT = "danlu.format";
  static final String K_VERSION = "danlu.format_version";
  static final String K_BLOCK = "danlu.block_size";
  static final String K_TOKENIZER = "danlu.tokenizer_sha256";
  static final String K_BOS = "danlu.bos_id";
  static final String K_EOS = "danlu.eos_id";
  static final String K_BATCH = "danlu.batch_rows";

  public ShardMeta {
    Objects.requireNonNull(tokenizerSha256, "tokenizerSha256");
    if (blockSize <= 0 || batchRows <= 0) {
      throw new IllegalArgumentException("blockSize and batchRows must be positive");
    }
    extra = Map.copyOf(extra);
  }

  /** Rows per batch so that one batch is about 2 MiB. */
  public static int defaultBatchRows(int blockSize) {
    return Math.max(1, (2 << 20) / (4 * blockSize));
  }

  public Schema schema() {
    Map<String, String> md = new LinkedHashMap<>();
    md.put(K_FORMAT, FORMAT);
    md.put(K_VERSION, Integer.toString(FORMAT_VERSION));
    md.put(K_BLOCK, Integer.toString(blockSize));
    md.put(K_TOKENIZER, tokenizerSha256);
    md.put(K_BOS, Integer.toString(bosId));
    md.put(K_EOS, Integer.toString(eosId));
    md.put(K_BATCH, Integer.toString(batchRows));
    extra.forEach((k, v) -> md.put("danlu." + k, v));
    Field item = new Field("item", FieldType.notNullable(new ArrowType.Int(32, true)), null);
    Field list =
        new Field(
            COLUMN,
            FieldType.notNullable(new ArrowType.FixedSizeList(blockSize)),
            java.util.List.of(item));
    return new Schema(java.util.List.of(list), md);
  }

  /**
   * Parses and validates a shard's schema.
   *
   * @param where the shard's name, for messages
   */
  public static ShardMeta fromSchema(Schema schema, String where) {
    Map<String, String> md = schema.getCustomMetadata();
    String format = md == null ? null : md.get(K_FORMAT);
    if (!FORMAT.equals(format)) {
      throw new ShardFormatException(
          where + ": not a danlu shard (schema metadata " + K_FORMAT + " = " + format + ")");
    }
    int version = intKey(md, K_VERSION, where);
    if (version != FORMAT_VERSION) {
      throw new ShardFormatException(
          where
              + ": shard format version "
              + version
              + ", this reader understands "
              + FORMAT_VERSION
              + "; rebuild the dataset with this danlu version (prep --rebuild)");
    }
    int block = intKey(md, K_BLOCK, where);
    if (schema.getFields().size() != 1
        || !schema.getFields().get(0).getName().equals(COLUMN)
        || !(schema.getFields().get(0).getType() instanceof ArrowType.FixedSizeList fsl)
        || fsl.getListSize() != block) {
      throw new ShardFormatException(
          where
              + ": expected one column "
              + COLUMN
              + " of fixed_size_list<int32>["
              + block
              + "], found "
              + schema.getFields());
    }
    Map<String, String> extra = new LinkedHashMap<>();
    md.forEach(
        (k, v) -> {
          if (k.startsWith("danlu.")
              && !java.util.Set.of(K_FORMAT, K_VERSION, K_BLOCK, K_TOKENIZER, K_BOS, K_EOS, K_BATCH)
                  .contains(k)) {
            extra.put(k.substring("danlu.".length()), v);
          }
        });
    return new ShardMeta(
        block,
        md.getOrDefault(K_TOKENIZER, ""),
        intKey(md, K_BOS, where),
        intKey(md, K_EOS, where),
        intKey(md, K_BATCH, where),
        extra);
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
