package dev.danlu.jobs.prep;

import dev.danlu.data.chunk.ChunkingMode;
import dev.danlu.data.chunk.LineRules;
import dev.danlu.data.chunk.ValidationSplit;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;

/**
 * Command line of {@code danlu prep}. Parsing checks every value and names the flag in errors.
 *
 * @param input a directory (searched recursively for {@code pattern}), a file, or a glob
 * @param splitBytes nominal byte size of one task's range of a big file
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
    boolean dryRun,
    boolean rebuild,
    boolean rehash,
    String utf8,
    int maxLineBytes,
    String pattern,
    int keepVersions,
    double progressSeconds)
    implements Serializable {

  public static final String USAGE =
      """
      usage: danlu prep --input <dir|file|glob> --tokenizer <tokenizer.model|tokenizer.json>
                        --block-size <n> --output <dir> [options]
        --master <url>                 Spark master (default: spark-submit's, else local[*])
        --validation-fraction <f>      fraction of groups in the validation split (default 0.001)
        --chunking group1000|file      reference group_texts (default) or whole-file concatenation
        --shard-size-mb <n>            target shard file size (default 256)
        --split-size-mb <n>            bytes of a big file per task (default 32; may be fractional)
        --utf8 replace|fail            invalid UTF-8: replace with U+FFFD and count (default), or fail
        --max-line-mb <n>              longer lines are skipped and counted (default 8)
        --pattern <glob>               file names to take from directories (default *.txt)
        --keep-versions <n>            manifest versions whose shards are kept (default 5)
        --progress-seconds <s>         console progress period (default 10, 0 = off)
        --dry-run                      scan and print the plan, write nothing
        --rebuild                      allow a different tokenizer/block size/params: re-tokenize all
        --rehash                       read and hash every file, even those with unchanged size+mtime
      """;

  public static PrepOptions parse(String[] args) {
    String input = null;
    String tokenizer = null;
    Integer blockSize = null;
    String output = null;
    String master = null;
    double fraction = ValidationSplit.DEFAULT_FRACTION;
    ChunkingMode chunking = ChunkingMode.GROUP1000;
    double shardMb = 256;
    double splitMb = 32;
    boolean dryRun = false;
    boolean rebuild = false;
    boolean rehash = false;
    String utf8 = "replace";
    double maxLineMb = LineRules.DEFAULT_MAX_LINE_BYTES / (double) (1 << 20);
    String pattern = "*.txt";
    int keep = 5;
    double progress = 10;
    List<String> rest = new ArrayList<>(List.of(args));
    while (!rest.isEmpty()) {
      String flag = rest.remove(0);
      switch (flag) {
        case "--dry-run" -> dryRun = true;
        case "--rebuild" -> rebuild = true;
        case "--rehash" -> rehash = true;
        case "-h", "--help" -> throw new UsageException("");
        default -> {
          if (!flag.startsWith("--")) {
            throw new UsageException("unexpected argument '" + flag + "'");
          }
          if (rest.isEmpty()) {
            throw new UsageException(flag + " needs a value");
          }
          String v = rest.remove(0);
          switch (flag) {
            case "--input" -> input = v;
            case "--tokenizer" -> tokenizer = v;
            case "--block-size" -> blockSize = (int) positive(flag, v);
            case "--output" -> output = v;
            case "--master" -> master = v;
            case "--validation-fraction" -> {
              fraction = number(flag, v);
              if (fraction < 0 || fraction >= 1) {
                throw new UsageException(flag + " must be in [0, 1), got " + v);
              }
            }
            case "--chunking" -> {
              try {
                chunking = ChunkingMode.parse(v);
              } catch (IllegalArgumentException e) {
                throw new UsageException(flag + ": " + e.getMessage());
              }
            }
            case "--shard-size-mb" -> shardMb = positive(flag, v);
            case "--split-size-mb" -> splitMb = positive(flag, v);
            case "--utf8" -> {
              if (!v.equals("replace") && !v.equals("fail")) {
                throw new UsageException(flag + " must be replace or fail, got " + v);
              }
              utf8 = v;
            }
            case "--max-line-mb" -> maxLineMb = positive(flag, v);
            case "--pattern" -> pattern = v;
            case "--keep-versions" -> keep = (int) positive(flag, v);
            case "--progress-seconds" -> progress = number(flag, v);
            default -> throw new UsageException("unknown option " + flag);
          }
        }
      }
    }
    if (input == null || tokenizer == null || blockSize == null || output == null) {
      throw new UsageException("--input, --tokenizer, --block-size and --output are required");
    }
    if (maxLineMb * (1 << 20) > Integer.MAX_VALUE - 16) {
      throw new UsageException("--max-line-mb must be below 2048");
    }
    return new PrepOptions(
        input,
        tokenizer,
        blockSize,
        output,
        master,
        fraction,
        chunking,
        Math.max(1, (long) (shardMb * (1 << 20))),
        Math.max(1, (long) (splitMb * (1 << 20))),
        dryRun,
        rebuild,
        rehash,
        utf8,
        (int) (maxLineMb * (1 << 20)),
        pattern,
        keep,
        progress);
  }

  private static double number(String flag, String v) {
    try {
      return Double.parseDouble(v);
    } catch (NumberFormatException e) {
      throw new UsageException(flag + " needs a number, got '" + v + "'");
    }
  }

  private static double positive(String flag, String v) {
    double d = number(flag, v);
    if (!(d > 0)) {
      throw new UsageException(flag + " must be positive, got " + v);
    }
    return d;
  }

  /** A command-line mistake: printed with the usage, exit code 2. */
  public static final class UsageException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public UsageException(String message) {
      super(message);
    }
  }
}
