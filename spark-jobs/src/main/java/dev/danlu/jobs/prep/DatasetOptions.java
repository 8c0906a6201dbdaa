package dev.danlu.jobs.prep;

import dev.danlu.data.cli.CliSupport;
import java.io.IOException;
import org.apache.hadoop.conf.Configuration;
import picocli.CommandLine.Option;

/**
 * The options {@code prep} and {@code prep-sft} share (a picocli mixin): the tokenizer, the dataset
 * directory, the Spark master and how shards are kept.
 */
final class DatasetOptions {
  @Option(
      names = "--tokenizer",
      required = true,
      paramLabel = "<tokenizer.model|tokenizer.json>",
      description = "The tokenizer (a local or Hadoop path).")
  String tokenizer;

  @Option(
      names = "--output",
      required = true,
      paramLabel = "<dir>",
      description = "The dataset directory (manifest versions and shards).")
  String output;

  @Option(
      names = "--master",
      paramLabel = "<url>",
      description = "Spark master (default: spark-submit's, else local[*]).")
  String master;

  @Option(
      names = "--shard-size-mb",
      paramLabel = "<n>",
      converter = CliSupport.PositiveNumber.class,
      description = "Largest shard file (default 256); a task rolls to a new part beyond it.")
  double shardMb = 256;

  @Option(
      names = "--keep-versions",
      paramLabel = "<n>",
      converter = CliSupport.PositiveInt.class,
      description = "Manifest versions whose shards are kept (default 5).")
  int keepVersions = 5;

  /** --shard-size-mb in bytes. */
  long shardBytes() {
    return Math.max(1, (long) (shardMb * (1 << 20)));
  }

  /** Loads {@code tokenizer}, naming the flag and the path when it cannot. */
  static TokenizerInfo loadTokenizer(String tokenizer) throws IOException {
    try {
      return TokenizerInfo.load(tokenizer, new Configuration());
    } catch (IOException e) {
      throw new IOException("--tokenizer " + tokenizer + ": " + e.getMessage(), e);
    }
  }
}
