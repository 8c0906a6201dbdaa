package dev.danlu.jobs.prep;

import dev.danlu.data.chunk.ChunkingMode;
import dev.danlu.data.chunk.LineRules;
import dev.danlu.data.chunk.ValidationSplit;
import dev.danlu.data.cli.CliSupport;
import dev.danlu.jobs.SparkSessions;
import java.io.IOException;
import java.io.PrintStream;
import java.util.concurrent.Callable;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.TypeConversionException;

/**
 * {@code danlu prep}: options and the tokenizer are checked before Spark starts; then the job runs
 * in a SparkSession (the master from {@code --master}, else spark-submit's, else local[*]). Exit
 * codes: 0 done, 1 refused or failed (message on stderr), 2 usage error.
 */
@Command(
    name = "prep",
    sortOptions = false,
    description = {
      "Corpus -> tokenized Arrow shards on Spark, incremental.",
      "Only new or changed files are tokenized, and a new manifest version is committed (or"
          + " nothing, when nothing changed). Options and the tokenizer are checked before Spark"
          + " starts.",
      ""
    })
public final class PrepCli implements Callable<Integer> {
  @Option(
      names = "--input",
      required = true,
      paramLabel = "<dir|file|glob>",
      description = "A directory (searched recursively for --pattern), a file, or a glob.")
  private String input;

  @Mixin private DatasetOptions dataset;

  @Option(
      names = "--block-size",
      required = true,
      paramLabel = "<n>",
      converter = CliSupport.PositiveInt.class,
      description = "Tokens per training block.")
  private int blockSize;

  @Option(
      names = "--validation-fraction",
      paramLabel = "<f>",
      converter = Fraction.class,
      description = "Fraction of groups in the validation split, in [0, 1) (default 0.001).")
  private double validationFraction = ValidationSplit.DEFAULT_FRACTION;

  @Option(
      names = "--chunking",
      paramLabel = "group1000|file",
      converter = Chunking.class,
      description = "Reference group_texts (default) or whole-file concatenation.")
  private ChunkingMode chunking = ChunkingMode.GROUP1000;

  @Option(
      names = "--split-size-mb",
      paramLabel = "<n>",
      converter = CliSupport.PositiveNumber.class,
      description = "Bytes of a big file per task (default 32; may be fractional).")
  private double splitMb = 32;

  @Option(
      names = "--group-size-mb",
      paramLabel = "<n>",
      converter = CliSupport.PositiveNumber.class,
      description =
          "Small files are packed into groups of about this many MB that share tasks and shards;"
              + " a refresh rewrites only the groups whose files changed (default 128).")
  private double groupMb = 128;

  @Option(
      names = "--task-size-mb",
      paramLabel = "<n>",
      converter = CliSupport.PositiveNumber.class,
      description =
          "MB of a group per task and shard set (default: the group size, less when the run is"
              + " small, so that every core gets about 4 tasks).")
  private double taskMb = 0;

  @Option(
      names = "--utf8",
      paramLabel = "replace|fail",
      converter = Utf8Policy.class,
      description =
          "Invalid UTF-8: replace with U+FFFD and count (default), or fail the file's split.")
  private String utf8 = "replace";

  @Option(
      names = "--max-line-mb",
      paramLabel = "<n>",
      converter = CliSupport.PositiveNumber.class,
      description = "Longer lines are skipped and counted (default 8, below 2048).")
  private double maxLineMb = LineRules.DEFAULT_MAX_LINE_BYTES / (double) (1 << 20);

  @Option(
      names = "--pattern",
      paramLabel = "<glob>",
      description = "File names to take from directories (default *.txt).")
  private String pattern = "*.txt";

  @Option(
      names = "--progress-seconds",
      paramLabel = "<s>",
      converter = CliSupport.FiniteNumber.class,
      description = "Console progress period (default 10, 0 = off).")
  private double progressSeconds = 10;

  @Option(names = "--dry-run", description = "Scan and print the plan, write nothing.")
  private boolean dryRun;

  @Option(
      names = "--rebuild",
      description = "Allow a different tokenizer/block size/params: re-tokenize everything.")
  private boolean rebuild;

  @Option(
      names = "--rehash",
      description = "Read and hash every file, even those with unchanged size and mtime.")
  private boolean rehash;

  @Spec private CommandSpec spec;

  private final PrintStream out;

  public PrepCli() {
    this(System.out);
  }

  public PrepCli(PrintStream out) {
    this.out = out;
  }

  public static void main(String[] args) {
    System.exit(run(args));
  }

  public static int run(String[] args) {
    return run(args, System.out, System.err);
  }

  static int run(String[] args, PrintStream out, PrintStream err) {
    return CliSupport.execute(new PrepCli(out), args, out, err);
  }

  /**
   * The options of a {@code prep} command line, checked as {@code danlu prep} checks them.
   *
   * @throws IllegalArgumentException naming the flag
   */
  static PrepOptions parse(String[] args) {
    PrepCli cli = new PrepCli();
    CliSupport.parse(cli, args);
    try {
      return cli.options();
    } catch (picocli.CommandLine.ParameterException e) {
      throw new IllegalArgumentException(e.getMessage(), e);
    }
  }

  PrepOptions options() {
    if (maxLineMb * (1 << 20) > Integer.MAX_VALUE - 16) {
      throw CliSupport.usageError(
          spec, "Invalid value for option '--max-line-mb': " + maxLineMb + " is not below 2048");
    }
    return new PrepOptions(
        input,
        dataset.tokenizer,
        blockSize,
        dataset.output,
        dataset.master,
        validationFraction,
        chunking,
        dataset.shardBytes(),
        Math.max(1, (long) (splitMb * (1 << 20))),
        Math.max(1, (long) (groupMb * (1 << 20))),
        taskMb == 0 ? 0 : Math.max(1, (long) (taskMb * (1 << 20))),
        dryRun,
        rebuild,
        rehash,
        utf8,
        (int) (maxLineMb * (1 << 20)),
        pattern,
        dataset.keepVersions,
        progressSeconds);
  }

  @Override
  public Integer call() throws IOException {
    PrepOptions o = options();
    TokenizerInfo tok = DatasetOptions.loadTokenizer(o.tokenizer());
    out.printf(
        "prep: tokenizer %s (sha256 %s, %d pieces, bos %d, eos %d)%n",
        o.tokenizer(), tok.sha256(), tok.vocabSize(), tok.bosId(), tok.eosId());
    SparkSession spark = SparkSessions.open("danlu prep", o.master());
    try {
      // our IOExceptions name the file and what to do: reported as one line, exit 1
      PrepJob.run(JavaSparkContext.fromSparkContext(spark.sparkContext()), o, tok, out);
      return CliSupport.OK;
    } finally {
      spark.stop();
    }
  }

  /** A number in [0, 1). */
  static final class Fraction implements ITypeConverter<Double> {
    @Override
    public Double convert(String v) {
      double f = new CliSupport.FiniteNumber().convert(v);
      if (f < 0 || f >= 1) {
        throw new TypeConversionException("'" + v + "' is not in [0, 1)");
      }
      return f;
    }
  }

  /** {@code group1000} or {@code file}. */
  static final class Chunking implements ITypeConverter<ChunkingMode> {
    @Override
    public ChunkingMode convert(String v) {
      try {
        return ChunkingMode.parse(v);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
    }
  }

  /** {@code replace} or {@code fail}. */
  static final class Utf8Policy implements ITypeConverter<String> {
    @Override
    public String convert(String v) {
      if (!v.equals("replace") && !v.equals("fail")) {
        throw new TypeConversionException("'" + v + "' is not replace or fail");
      }
      return v;
    }
  }
}
