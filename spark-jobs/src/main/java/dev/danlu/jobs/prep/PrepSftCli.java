package dev.danlu.jobs.prep;

import dev.danlu.data.cli.CliSupport;
import java.io.IOException;
import java.io.PrintStream;
import java.util.concurrent.Callable;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Command;
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
public final class PrepSftCli implements Callable<Integer> {
  @Option(
      names = "--input",
      required = true,
      paramLabel = "<file|dir|glob>",
      description = "A *.json (array) or *.jsonl file, or a directory searched recursively.")
  private String input;

  @Option(
      names = "--tokenizer",
      required = true,
      paramLabel = "<tokenizer.model|tokenizer.json>",
      description = "The tokenizer (a local or Hadoop path).")
  private String tokenizer;

  @Option(
      names = "--max-seq-length",
      required = true,
      paramLabel = "<L>",
      converter = CliSupport.PositiveInt.class,
      description = "Examples are cut to L tokens (the reference uses 512).")
  private int maxSeqLength;

  @Option(
      names = "--output",
      required = true,
      paramLabel = "<dir>",
      description = "The dataset directory (manifest versions and shards).")
  private String output;

  @Option(
      names = "--master",
      paramLabel = "<url>",
      description = "Spark master (default: spark-submit's, else local[*]).")
  private String master;

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

  @Option(
      names = "--shard-size-mb",
      paramLabel = "<n>",
      converter = CliSupport.PositiveNumber.class,
      description = "Target shard file size (default 256).")
  private double shardMb = 256;

  @Option(
      names = "--keep-versions",
      paramLabel = "<n>",
      converter = CliSupport.PositiveInt.class,
      description = "Manifest versions whose shards are kept (default 5).")
  private int keepVersions = 5;

  @Spec private CommandSpec spec;

  private final PrintStream out;

  public PrepSftCli() {
    this(System.out);
  }

  public PrepSftCli(PrintStream out) {
    this.out = out;
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
        tokenizer,
        maxSeqLength,
        output,
        master,
        validationFile,
        validationFraction,
        skipBadRecords,
        rebuild,
        Math.max(1, (long) (shardMb * (1 << 20))),
        keepVersions);
  }

  @Override
  public Integer call() throws IOException {
    PrepSftJob.Options o = options();
    TokenizerInfo tok;
    try {
      tok = TokenizerInfo.load(o.tokenizer(), new Configuration());
    } catch (IOException e) {
      throw new IOException("--tokenizer " + o.tokenizer() + ": " + e.getMessage(), e);
    }
    out.printf(
        "prep-sft: tokenizer %s (sha256 %s, %d pieces, bos %d, eos %d, pad %d)%n",
        o.tokenizer(), tok.sha256(), tok.vocabSize(), tok.bosId(), tok.eosId(), tok.padId());
    SparkConf conf = new SparkConf().setAppName("danlu prep-sft");
    if (o.master() != null) {
      conf.setMaster(o.master());
    } else if (!conf.contains("spark.master")) {
      conf.setMaster("local[*]");
    }
    SparkSession spark = SparkSession.builder().config(conf).getOrCreate();
    try {
      PrepSftJob.run(JavaSparkContext.fromSparkContext(spark.sparkContext()), o, tok, out);
      return CliSupport.OK;
    } finally {
      spark.stop();
    }
  }
}
