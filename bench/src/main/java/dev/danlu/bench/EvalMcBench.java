package dev.danlu.bench;

import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.launch.eval.McJob;
import dev.danlu.train.eval.ChoiceScorer;
import dev.danlu.train.eval.EvalModel;
import dev.danlu.train.eval.McBenchmark;
import dev.danlu.train.eval.McSuite;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.RandomInit;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

/**
 * {@code eval mc} throughput, questions/s, on 5-shot CMMLU prompts (the dev questions of ../shared,
 * each subject's dev file as its own few-shot source) and a small random LLaMA with the
 * Chinese-LLaMA-2 vocabulary: the prefix KV cache against running every prompt from its first token
 * (the reference's way), and 1 against 2 Spark tasks, in one local[2] Spark context. The model is
 * loaded once before the clock starts (a warm-up run); each case is the best of {@code --repeats}
 * runs.
 *
 * <pre>bench/run.sh EvalMcBench [--subjects 12] [--repeats 2] [--hidden 256] [--layers 4]</pre>
 */
public final class EvalMcBench {
  private EvalMcBench() {}

  public static void main(String[] args) throws Exception {
    int subjects = 12;
    int repeats = 2;
    int hidden = 256;
    int layers = 4;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--subjects" -> subjects = Integer.parseInt(args[++i]);
        case "--repeats" -> repeats = Integer.parseInt(args[++i]);
        case "--hidden" -> hidden = Integer.parseInt(args[++i]);
        case "--layers" -> layers = Integer.parseInt(args[++i]);
        default ->
            throw new IllegalArgumentException(
                "unknown option "
                    + args[i]
                    + "; usage: EvalMcBench [--subjects N] [--repeats N] [--hidden D] [--layers L]");
      }
    }
    Path shared = BenchDirs.shared();
    Path cmmlu = shared.resolve("fixtures/eval/cmmlu-dev");
    Path tokFile = shared.resolve("fixtures/tokenizers/chinese-llama2-tokenizer.model");
    Path work = Files.createTempDirectory("eval-mc-bench");
    Path data = Files.createDirectories(work.resolve("data"));
    try (Stream<Path> s = Files.list(cmmlu)) {
      for (Path f : s.sorted().limit(subjects).toList()) {
        Files.copy(f, data.resolve(f.getFileName()));
      }
    }
    LlamaConfig c =
        new LlamaConfig(
            hidden, hidden * 8 / 3, layers, 8, 4, 55296, 1e-5, 10000.0, null, false, 4096);
    Path model = work.resolve("model");
    RandomInit.writeHfDir(model, c, 1, tokFile);
    EvalModel spec = EvalModel.resolve(model, null, null);
    McSuite.Options o = new McSuite.Options(McBenchmark.CMMLU, data, data, 5, false, false);
    List<McSuite.Subject> subs;
    ChoiceScorer.Choices choices;
    try (TextTokenizer tok = TextTokenizer.load(tokFile)) {
      subs = McSuite.load(o, tok, c.maxPositionEmbeddings());
      choices = ChoiceScorer.Choices.of(tok);
    }
    int questions = subs.stream().mapToInt(s -> s.questions().size()).sum();
    long tokens = 0;
    long uncached = 0;
    for (McSuite.Subject s : subs) {
      for (McSuite.Question q : s.questions()) {
        tokens += q.ids().length;
        uncached += q.ids().length - q.prefixLen();
      }
    }
    System.out.printf(
        Locale.ROOT,
        "model: hidden %d, %d layers, 8 heads (4 kv), vocab 55296; %d subjects, %d questions,"
            + " 5-shot prompts of %.0f tokens on average, %.0f after the subject's shared prefix%n",
        hidden,
        layers,
        subs.size(),
        questions,
        (double) tokens / questions,
        (double) uncached / questions);
    JavaSparkContext jsc =
        new JavaSparkContext(
            new SparkConf()
                .setMaster("local[2]")
                .setAppName("EvalMcBench")
                .set("spark.ui.enabled", "false"));
    try {
      McJob.run(jsc, spec, subs.subList(0, 1), choices, 0.2, true, 1); // load the model
      double cache1 = best(jsc, spec, subs, choices, true, 1, repeats, questions);
      double plain1 = best(jsc, spec, subs, choices, false, 1, repeats, questions);
      double cache2 = best(jsc, spec, subs, choices, true, 2, repeats, questions);
      System.out.printf(Locale.ROOT, "prefix cache, 1 task : %8.2f questions/s%n", cache1);
      System.out.printf(Locale.ROOT, "no cache,     1 task : %8.2f questions/s%n", plain1);
      System.out.printf(Locale.ROOT, "prefix cache, 2 tasks: %8.2f questions/s%n", cache2);
      System.out.printf(Locale.ROOT, "prefix cache vs none (1 task): %.2fx%n", cache1 / plain1);
      System.out.printf(Locale.ROOT, "2 tasks vs 1 (prefix cache):   %.2fx%n", cache2 / cache1);
    } finally {
      jsc.stop();
    }
  }

  private static double best(
      JavaSparkContext jsc,
      EvalModel spec,
      List<McSuite.Subject> subs,
      ChoiceScorer.Choices choices,
      boolean cache,
      int tasks,
      int repeats,
      int questions) {
    double best = 0;
    for (int r = 0; r < repeats; r++) {
      long t0 = System.nanoTime();
      McJob.run(jsc, spec, subs, choices, 0.2, cache, tasks);
      best = Math.max(best, questions / ((System.nanoTime() - t0) / 1e9));
    }
    return best;
  }
}
