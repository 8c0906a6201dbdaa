package dev.danlu.launch.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.danlu.data.cli.CliSupport;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.train.eval.ChoiceScorer;
import dev.danlu.train.eval.EvalModel;
import dev.danlu.train.eval.McBenchmark;
import dev.danlu.train.eval.McReport;
import dev.danlu.train.eval.McSuite;
import dev.danlu.train.model.LlamaConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code danlu eval mc}: C-Eval / CMMLU multiple choice exactly as Chinese-LLaMA-Alpaca-2's
 * evaluators score it (constrained decoding), questions spread over Spark tasks. The CSVs are read,
 * checked and tokenized on the driver before Spark starts.
 */
@Command(
    name = "mc",
    sortOptions = false,
    description = {
      "C-Eval / CMMLU multiple choice as Chinese-LLaMA-Alpaca-2's evaluators score it.",
      "Every *.csv in --data is a subject; few-shot examples come from the same subject's CSV in"
          + " --dev. Writes per-question scores and per-subject/category accuracies to --output"
          + " and prints a table.",
      ""
    })
public final class McCommand implements Callable<Integer> {
  @Spec private CommandSpec spec;

  @Option(
      names = "--benchmark",
      required = true,
      paramLabel = "ceval|cmmlu",
      description = "Which evaluator's prompts and categories.")
  private String benchmark;

  @Mixin private ModelOptions models;

  @Option(
      names = "--data",
      required = true,
      paramLabel = "<dir>",
      description = "Directory of subject CSVs (val/test split).")
  private Path data;

  @Option(
      names = "--dev",
      paramLabel = "<dir>",
      description = "Directory of dev CSVs for few-shot examples (needed when --shots > 0).")
  private Path dev;

  @Option(
      names = "--shots",
      paramLabel = "<k>",
      converter = CliSupport.NonNegativeInt.class,
      description = "Few-shot examples, 0..5 (default 5, the scripts' --ntrain).")
  private int shots = 5;

  @Option(names = "--with-prompt", description = "Wrap in the Alpaca-2 template (chat models).")
  private boolean withPrompt;

  @Option(
      names = "--temperature",
      paramLabel = "<t>",
      converter = CliSupport.PositiveNumber.class,
      description = "The scripts' --temperature: divides the scores (default 0.2).")
  private double temperature = ChoiceScorer.TEMPERATURE;

  @Option(
      names = "--no-truncate",
      description = "Fail on a prompt longer than the context instead of dropping examples.")
  private boolean noTruncate;

  @Option(
      names = "--no-prefix-cache",
      description = "Run every prompt from its first token (the reference's way; slower).")
  private boolean noPrefixCache;

  @Option(
      names = "--master",
      paramLabel = "<url>",
      description = "Spark master (default: spark-submit's, else local[*]).")
  private String master;

  @Option(
      names = "--tasks",
      paramLabel = "<n>",
      converter = CliSupport.PositiveInt.class,
      description = "Spark tasks to spread the questions over (default: default parallelism).")
  private Integer tasks;

  @Option(
      names = "--output",
      required = true,
      paramLabel = "<results.json>",
      description = "Where to write the results.")
  private Path output;

  private final PrintStream out;
  private final PrintStream err;
  private final SparkRunner spark;

  public McCommand(PrintStream out, PrintStream err, SparkRunner spark) {
    this.out = out;
    this.err = err;
    this.spark = spark;
  }

  @Override
  public Integer call() throws IOException {
    McBenchmark b;
    try {
      b = McBenchmark.parse(benchmark);
    } catch (IllegalArgumentException e) {
      throw CliSupport.usageError(spec, "--benchmark: " + e.getMessage());
    }
    if (shots > 5) {
      throw CliSupport.usageError(spec, "--shots must be 0..5, got " + shots);
    }
    if (shots > 0 && dev == null) {
      throw CliSupport.usageError(spec, "--shots " + shots + " needs --dev <dir of dev CSVs>");
    }
    EvalModel m = models.resolve(spec);
    McSuite.Options o = new McSuite.Options(b, data, dev, shots, withPrompt, noTruncate);
    List<McSuite.Subject> subjects;
    ChoiceScorer.Choices choices;
    int maxLen = LlamaConfig.load(models.model).maxPositionEmbeddings();
    try (TextTokenizer tok = TextTokenizer.load(Path.of(m.tokenizer()))) {
      m.checkVocabulary(tok);
      subjects = McSuite.load(o, tok, maxLen);
      choices = ChoiceScorer.Choices.of(tok);
    }
    int questions = subjects.stream().mapToInt(s -> s.questions().size()).sum();
    SparkConf conf = new SparkConf().setAppName("danlu eval mc");
    if (master != null) {
      conf.setMaster(master);
    }
    JavaSparkContext jsc = spark.open(conf);
    long t0 = System.nanoTime();
    Map<String, List<ChoiceScorer.Scored>> results;
    int n;
    try {
      n = tasks != null ? tasks : jsc.defaultParallelism();
      err.printf(
          "danlu eval mc: %s, %d subjects, %d questions, %d-shot%s, on %s in %d tasks%n",
          b.id(),
          subjects.size(),
          questions,
          shots,
          withPrompt ? " with the Alpaca-2 template" : "",
          jsc.master(),
          n);
      results = McJob.run(jsc, m, subjects, choices, temperature, !noPrefixCache, n);
    } finally {
      spark.release(jsc);
    }
    double secs = (System.nanoTime() - t0) / 1e9;
    ObjectNode json = McReport.json(b, o, subjects, results);
    write(json, output);
    PrintStream utf8 = new PrintStream(out, true, StandardCharsets.UTF_8);
    McReport.table(json, utf8);
    utf8.flush();
    err.printf(
        "danlu eval mc: %d questions in %.1f s (%.2f questions/s) -> %s%n",
        questions, secs, questions / Math.max(secs, 1e-9), output);
    return CliSupport.OK;
  }

  static void write(ObjectNode json, Path output) throws IOException {
    Path parent = output.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
    new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(output.toFile(), json);
  }
}
