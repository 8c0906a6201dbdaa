package dev.danlu.jobs.prep;

import dev.danlu.data.chunk.ChunkingMode;
import java.io.Serializable;

/**
 * Options of {@code danlu prep}, as {@link PrepCli} parses and checks them (this record goes to the
 * executors, so it knows nothing of the command-line parser).
 *
 * @param input a directory (searched recursively for {@code pattern}), a file, or a glob
 * @param splitBytes nominal byte size of one task's range of a big file
 * @param groupBytes target weight of a packing group of small files (docs/data-format.md)
 * @param taskBytes target bytes of one shard-writing unit of a group, 0 to size units by the run
 *     (see {@link PrepPlan#unitBytes})
 * @param progressSeconds period of the console progress line (0 disables it)
 */
public record PrepOptions(
    String input,
    String tokenizer,
    int blockSize,
    String output,
    String master,
    double validationFraction,
    ChunkingMode chunking,
    long shardBytes,
    long splitBytes,
    long groupBytes,
    long taskBytes,
    boolean dryRun,
    boolean rebuild,
    boolean rehash,
    String utf8,
    int maxLineBytes,
    String pattern,
    int keepVersions,
    double progressSeconds)
    implements Serializable {

  /**
   * Parses a {@code danlu prep} command line (the options of {@link PrepCli}).
   *
   * @throws IllegalArgumentException naming the flag that is missing or wrong
   */
  public static PrepOptions parse(String[] args) {
    return PrepCli.parse(args);
  }
}
