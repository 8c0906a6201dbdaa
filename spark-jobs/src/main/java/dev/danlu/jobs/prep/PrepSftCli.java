package dev.danlu.jobs.prep;

import dev.danlu.data.cli.CliSupport;
import dev.danlu.jobs.SparkSessions;
import java.io.IOException;
import java.io.PrintStream;
import java.util.concurrent.Callable;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code danlu prep-sft}: instruction records ({@code *.json} arrays or {@code *.jsonl}) → Alpaca-2
 * prompts → {@code input_ids}/{@code labels} Arrow shards (docs/sft.md). Options and the tokenizer
 * are checked before Spark starts. Exit codes: 0 done, 1 refused or failed, 2 usage error.
 */
@Command(
    name = "prep-sft",
    sortOptions = false,
    description = {
      "Instruction data (Alpaca {instruction, input, output}) -> Arrow shards of input_ids and"
          + " labels, on Spark.",
      "Bad records stop the run naming file and record, nothing committed, unless"
          + " --skip-bad-records. Unchanged files are reused from the committed version.",
      ""
    })
public class PrepSftCli implements Callable<Integer> {
  @Option(
      names = "--input",
      required = true,
      paramLabel = "<file|dir|glob>",
      description = "A *.json (array) or *.jsonl file, or a directory searched recursively.")
  private String input;

  @Mixin private DatasetOptions dataset;

  @Option(
      names = "--max-seq-length",
      required = true,
      paramLabel = "<L>",
      converter = CliSupport.PositiveInt.class,
      description = "Examples are cut to L tokens (the reference uses 512).")
  private int maxSeqLength;

  @Option(
      names = "--validation-file",
      paramLabel = "<file|dir>",
      description = "Records for the validation split (instead of --validation-fraction).")
  private String validationFile;

  @Option(
      names = "--validation-fraction",
      paramLabel = "<f>",
      converter = PrepCli.Fraction.class,
      description = "Fraction of --input records sent to validation, in [0, 1) (default 0).")
  private double validationFraction;

  @Option(
      names = "--skip-bad-records",
      description = "Skip and count records that are not valid instruction records.")
  private boolean skipBadRecords;

  @Option(
      names = "--rebuild",
      description = "Allow a different tokenizer/max length/params: re-tokenize everything.")
  private boolean rebuild;

  @Spec private CommandSpec spec;

  private final PrintStream out;
  private final boolean pairs;

  public PrepSftCli() {
    this(System.out);
  }

  public PrepSftCli(PrintStream out) {
    this(out, false);
  }

  /** {@code pairs}: preference pairs (prep-pairs, {@link PrepPairsCli}) instead of instructions. */
  PrepSftCli(PrintStream out, boolean pairs) {
    this.out = out;
    this.pairs = pairs;
  }

  public static void main(String[] args) {
    System.exit(run(args));
  }

  public static int run(String[] args) {
    return run(args, System.out, System.err);
  }

  static int run(String[] args, PrintStream out, PrintStream err) {
    return CliSupport.execute(new PrepSftCli(out), args, out, err);
  }

  /** The options of a command line, checked as {@code danlu prep-sft} checks them. */
  static PrepSftJob.Options parse(String[] args) {
    PrepSftCli cli = new PrepSftCli();
    CliSupport.parse(cli, args);
    try {
      return cli.options();
    } catch (picocli.CommandLine.ParameterException e) {
      throw new IllegalArgumentException(e.getMessage(), e);
    }
  }

  PrepSftJob.Options options() {
    if (validationFile != null && validationFraction > 0) {
      throw CliSupport.usageError(
          spec, "--validation-file and --validation-fraction are mutually exclusive");
    }
    return new PrepSftJob.Options(
        input,
        dataset.tokenizer,
        maxSeqLength,
        dataset.output,
        dataset.master,
        validationFile,
        validationFraction,
        skipBadRecords,
        rebuild,
        dataset.shardBytes(),
        dataset.keepVersions,
        pairs);
  }

  @Override
  public Integer call() throws IOException {
    PrepSftJob.Options o = options();
    TokenizerInfo tok = DatasetOptions.loadTokenizer(o.tokenizer());
    out.printf(
        o.command() + ": tokenizer %s (sha256 %s, %d pieces, bos %d, eos %d, pad %d)%n",
        o.tokenizer(),
        tok.sha256(),
        tok.vocabSize(),
        tok.bosId(),
        tok.eosId(),
        tok.padId());
    SparkSession spark = SparkSessions.open("danlu " + o.command(), o.master());
    try {
      PrepSftJob.run(JavaSparkContext.fromSparkContext(spark.sparkContext()), o, tok, out);
      return CliSupport.OK;
    } finally {
      spark.stop();
    }
  }
}
