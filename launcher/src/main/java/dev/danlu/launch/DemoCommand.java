package dev.danlu.launch;

import dev.danlu.data.cli.CliSupport;
import dev.danlu.data.manifest.ManifestIo;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.jobs.prep.PrepCli;
import dev.danlu.launch.demo.DemoCorpus;
import dev.danlu.launch.demo.Perplexity;
import dev.danlu.launch.demo.SftStages;
import dev.danlu.launch.demo.StageTable;
import dev.danlu.train.cli.GenerateCli;
import dev.danlu.train.lora.PeftBridge;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.model.RandomInit;
import dev.danlu.train.tensor.Backend;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.nd4j.linalg.api.buffer.DataType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code danlu demo [--work <dir>] [--fresh]}: the whole pipeline on a built-in default, in Spark
 * local mode — a subset of the State-of-the-Union speeches fetched by the project's own script, a
 * randomly initialised tiny LLaMA with LLaMA-2's 32000-piece tokenizer, prep → 2-rank training →
 * validation perplexity before and after → a greedy sample. Each stage reuses what an earlier run
 * left (prep is incremental, training resumes from its checkpoint) unless {@code --fresh}.
 */
@Command(
    name = "demo",
    sortOptions = false,
    description = {
      "The whole pipeline on a built-in small corpus and tiny model, Spark local mode.",
      "State-of-the-Union speeches (fetched by scripts/fetch-corpora.sh) -> prep -> 2-rank"
          + " training -> validation perplexity before and after -> a greedy sample. A re-run"
          + " reuses what an earlier run left unless --fresh.",
      ""
    })
public final class DemoCommand implements Callable<Integer> {
  @Option(
      names = "--work",
      paramLabel = "<dir>",
      description = "Where every output goes (default work/demo under the repository).")
  private Path work;

  @Option(
      names = "--fresh",
      description = "Delete the work directory first (only one the demo made) and start over.")
  private boolean fresh;

  @Option(
      names = "--chinese",
      description =
          "The vocabulary-extension demo instead: Tang poems -> vocab train -> merge with LLaMA-2's"
              + " tokenizer -> tokens per character before/after -> prep -> a short pretraining"
              + " run with resized embeddings (default --work work/demo-chinese).")
  private boolean chinese;

  private final PrintStream out;

  /** The tiny model: small enough to train visibly in a minute on 2 CPU cores. */
  static final int HIDDEN = 64;

  static final int INTERMEDIATE = 172;
  static final int LAYERS = 2;
  static final int HEADS = 4;
  static final int KV_HEADS = 2;
  static final int MAX_POSITIONS = 256;
  static final long MODEL_SEED = 20240229L;

  static final int BLOCK_SIZE = 128;
  static final double VALIDATION_FRACTION = 0.05;
  static final long CORPUS_BYTES = 1_000_000;
  static final String PROMPT = "The state of the Union is";
  static final int SAMPLE_TOKENS = 32;
  static final int EVAL_BATCH = 8;

  /** Marks a directory the demo created, so {@code --fresh} never deletes anything else. */
  static final String MARKER = ".danlu-demo";

  /** What a run produced; perplexities are NaN for what could not be computed. */
  record Report(
      int exitCode, StageTable table, double baseLoss, double trainedLoss, String sample) {}

  public DemoCommand() {
    this(System.out);
  }

  DemoCommand(PrintStream out) {
    this.out = out;
  }

  public static int run(String[] args) {
    return CliSupport.execute(new DemoCommand(), args, System.out, System.err);
  }

  @Override
  public Integer call() throws Exception {
    Path repo = repoDir();
    if (chinese) {
      Path dir = work == null ? repo.resolve("work/demo-chinese") : work;
      return ChineseDemo.execute(
              repo, dir.toAbsolutePath().normalize(), fresh, ChineseDemo.Size.DEMO, out)
          .exitCode();
    }
    Path dir = work == null ? repo.resolve("work/demo") : work;
    return execute(repo, dir.toAbsolutePath().normalize(), fresh, out).exitCode();
  }

  /**
   * The repository root: {@code -Ddanlu.repo.dir} (set by bin/danlu), else the nearest directory at
   * or above the working directory that holds {@code conf/tiny-pretrain.yaml}.
   */
  static Path repoDir() throws IOException {
    String p = System.getProperty("danlu.repo.dir");
    if (p != null && !p.isBlank()) {
      return Path.of(p).toAbsolutePath().normalize();
    }
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      if (Files.isRegularFile(d.resolve("conf/tiny-pretrain.yaml"))) {
        return d;
      }
    }
    throw new IOException(
        "cannot find the danlu repository (conf/tiny-pretrain.yaml) at or above "
            + Path.of("").toAbsolutePath()
            + "; run bin/danlu demo or pass -Ddanlu.repo.dir");
  }

  static Report execute(Path repo, Path work, boolean fresh, PrintStream out) throws Exception {
    // Spark's INFO logging would bury the demo's own lines; an explicit setting still wins.
    if (System.getProperty("spark.log.level") == null) {
      System.setProperty("spark.log.level", "WARN");
    }
    if (fresh) {
      clear(work);
    }
    if (!Files.isDirectory(work) || isEmpty(work)) {
      Files.createDirectories(work);
      Files.writeString(work.resolve(MARKER), "created by danlu demo\n");
    }
    Path corpus = work.resolve("corpus");
    Path model = work.resolve("tiny-llama");
    Path shards = work.resolve("shards");
    Path output = work.resolve("output");
    Path adapterDir = output.resolve("pt_lora_model");
    StageTable table = new StageTable();
    out.println("danlu demo: work directory " + work);

    // 1. corpus
    long t = System.nanoTime();
    DemoCorpus.Sources src;
    try {
      src = DemoCorpus.ensure(repo, DemoCorpus.cacheDir(), out);
    } catch (IOException e) {
      out.println("danlu demo: corpus: " + e.getMessage());
      table.add("corpus", "FAILED", secs(t), e.getMessage());
      return finish(out, table, 1, Double.NaN, Double.NaN, null);
    }
    DemoCorpus.Subset subset = DemoCorpus.subset(src.englishDir(), corpus, CORPUS_BYTES);
    out.printf(
        "danlu demo: corpus: %d State-of-the-Union speeches, %.2f MB from %s -> %s%n",
        subset.files(), subset.bytes() / 1e6, src.englishDir(), corpus);
    table.add("corpus", src.fetched() ? "fetched" : "done", secs(t), corpus.toString());

    // 2. tiny model
    t = System.nanoTime();
    int vocab;
    try (TextTokenizer tok = TextTokenizer.load(src.tokenizerModel())) {
      vocab = tok.vocabSize();
    }
    LlamaConfig mc =
        new LlamaConfig(
            HIDDEN,
            INTERMEDIATE,
            LAYERS,
            HEADS,
            KV_HEADS,
            vocab,
            1e-5,
            10000.0,
            null,
            false,
            MAX_POSITIONS);
    boolean reuseModel = sameModel(model, mc, src.tokenizerModel());
    if (!reuseModel) {
      RandomInit.writeHfDir(model, mc, MODEL_SEED, src.tokenizerModel());
    }
    out.printf(
        "danlu demo: model: LLaMA hidden %d, %d layers, %d heads (%d kv), vocabulary %d,"
            + " random init seed %d -> %s%n",
        HIDDEN, LAYERS, HEADS, KV_HEADS, vocab, MODEL_SEED, model);
    table.add("tiny model", reuseModel ? "reused" : "done", secs(t), model.toString());

    // 3. prep on Spark local[2]
    t = System.nanoTime();
    long versionBefore = manifestVersion(shards);
    int rc =
        PrepCli.run(
            new String[] {
              "--input", corpus.toString(),
              "--tokenizer", model.resolve("tokenizer.model").toString(),
              "--block-size", Integer.toString(BLOCK_SIZE),
              "--output", shards.toString(),
              "--validation-fraction", Double.toString(VALIDATION_FRACTION),
              "--master", "local[2]",
              "--progress-seconds", "0"
            });
    if (rc != 0) {
      table.add("prep", "FAILED (exit " + rc + ")", secs(t), shards.toString());
      return finish(out, table, 1, Double.NaN, Double.NaN, null);
    }
    boolean upToDate = versionBefore > 0 && manifestVersion(shards) == versionBefore;
    table.add("prep", upToDate ? "up to date" : "done", secs(t), shards.toString());

    // 4. train: 2 ranks in Spark local mode through the train subcommand
    t = System.nanoTime();
    if ((!reuseModel || !upToDate) && Files.exists(output)) {
      // the trainer rightly refuses to resume a checkpoint of another model or dataset version
      out.println("danlu demo: new model or data: training starts over in " + output);
      deleteTree(output);
    }
    rc =
        TrainCommand.run(
            new String[] {
              "--config",
              repo.resolve("conf/tiny-pretrain.yaml").toString(),
              "model_name_or_path=" + model,
              "dataset_dir=" + shards,
              "output_dir=" + output,
              "world_size=2",
              "--progress-interval-seconds",
              "5"
            });
    if (rc != 0 || !Files.isRegularFile(adapterDir.resolve("adapter_config.json"))) {
      String why = rc != 0 ? "exit " + rc : "no adapter in " + adapterDir;
      table.add("train", "FAILED (" + why + ")", secs(t), output.toString());
      return finish(out, table, 1, Double.NaN, Double.NaN, null);
    }
    table.add("train", "done", secs(t), adapterDir.toString());

    // 5. validation perplexity, untrained base vs base + adapter
    t = System.nanoTime();
    Backend.select();
    LlamaWeights base = HfLlama.load(model, DataType.FLOAT);
    Path manifest = shards.resolve(ManifestIo.CURRENT);
    Perplexity.Cached before =
        Perplexity.cached(
            work.resolve("perplexity-untrained.json"),
            List.of(model.resolve("model.safetensors"), manifest),
            () -> Perplexity.evaluate(base, null, shards, EVAL_BATCH));
    out.printf(
        "danlu demo: validation perplexity of the untrained model: %.1f (loss %.4f over %d tokens,"
            + " %d blocks)%n",
        before.result().perplexity(),
        before.result().loss(),
        before.result().tokens(),
        before.result().rows());
    Perplexity.Cached after =
        Perplexity.cached(
            work.resolve("perplexity-trained.json"),
            List.of(
                model.resolve("model.safetensors"),
                manifest,
                adapterDir.resolve("adapter_model.safetensors"),
                adapterDir.resolve("adapter_config.json")),
            () ->
                Perplexity.evaluate(
                    base,
                    PeftBridge.load(adapterDir, base.config(), DataType.FLOAT),
                    shards,
                    EVAL_BATCH));
    double afterLoss = after.result().loss();
    boolean reusedAll = before.reused() && after.reused();
    out.printf(
        "danlu demo: validation perplexity after training:     %.1f (loss %.4f)%n",
        after.result().perplexity(), afterLoss);
    table.add(
        "perplexity",
        reusedAll ? "reused" : "done",
        secs(t),
        String.format(
            Locale.ROOT, "%.1f -> %.1f", before.result().perplexity(), Math.exp(afterLoss)));

    // 6. a greedy sample through the generate subcommand's code
    t = System.nanoTime();
    List<String> gen =
        new java.util.ArrayList<>(
            List.of(
                "--model", model.toString(),
                "--prompt", PROMPT,
                "--max-new-tokens", Integer.toString(SAMPLE_TOKENS),
                "--adapter", adapterDir.toString()));
    ByteArrayOutputStream text = new ByteArrayOutputStream();
    PrintStream textOut = new PrintStream(text, true, StandardCharsets.UTF_8);
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    rc =
        GenerateCli.run(
            gen.toArray(String[]::new),
            textOut,
            new PrintStream(log, true, StandardCharsets.UTF_8));
    String sample = text.toString(StandardCharsets.UTF_8).strip();
    if (rc != 0) {
      out.print(log.toString(StandardCharsets.UTF_8));
      table.add("sample", "FAILED (exit " + rc + ")", secs(t), "");
      return finish(out, table, 1, before.result().loss(), afterLoss, null);
    }
    out.println("danlu demo: greedy sample with the adapter: " + sample);
    table.add("sample", "done", secs(t), "(printed above)");

    // 7-10. the Alpaca-2 path: instruction data, SFT on the pretraining adapter, merge, chat
    SftStages.Result sft = SftStages.run(repo, work, corpus, model, adapterDir, table, out);
    return finish(out, table, sft.ok() ? 0 : 1, before.result().loss(), afterLoss, sample);
  }

  private static Report finish(
      PrintStream out, StageTable table, int exit, double before, double after, String sample) {
    out.println("\ndanlu demo: summary");
    table.print(out);
    return new Report(exit, table, before, after, sample);
  }

  /** True when {@code dir} already holds this model: same config and the same tokenizer bytes. */
  private static boolean sameModel(Path dir, LlamaConfig c, Path tokenizer) throws IOException {
    if (!Files.isRegularFile(dir.resolve("config.json"))
        || !Files.isRegularFile(dir.resolve("model.safetensors"))
        || !Files.isRegularFile(dir.resolve("tokenizer.model"))) {
      return false;
    }
    try {
      return LlamaConfig.load(dir).equals(c)
          && Files.readString(dir.resolve("config.json"))
              .contains("\"danlu_init_seed\" : " + MODEL_SEED)
          && Files.mismatch(dir.resolve("tokenizer.model"), tokenizer) == -1;
    } catch (IOException | IllegalArgumentException e) {
      return false;
    }
  }

  /** Deletes {@code work} for --fresh, but only a directory the demo made (or an empty one). */
  static void clear(Path work) throws IOException {
    if (!Files.exists(work)) {
      return;
    }
    if (!isEmpty(work) && !Files.isRegularFile(work.resolve(MARKER))) {
      throw new IOException(
          work
              + " was not made by danlu demo (no "
              + MARKER
              + "); refusing to delete it for --fresh");
    }
    deleteTree(work);
  }

  /** Deletes {@code root} and everything below it (the demo's own directories only). */
  public static void deleteTree(Path root) throws IOException {
    Files.walkFileTree(
        root,
        new SimpleFileVisitor<>() {
          @Override
          public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
            Files.delete(f);
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
            Files.delete(d);
            return FileVisitResult.CONTINUE;
          }
        });
  }

  /** The committed dataset version at {@code shards}, 0 when there is none yet. */
  private static long manifestVersion(Path shards) {
    try {
      return Files.isRegularFile(shards.resolve(ManifestIo.CURRENT))
          ? ManifestIo.readCurrent(shards).version()
          : 0;
    } catch (IOException e) {
      return 0;
    }
  }

  private static boolean isEmpty(Path dir) throws IOException {
    try (var s = Files.list(dir)) {
      return s.findAny().isEmpty();
    }
  }

  private static double secs(long t0) {
    return (System.nanoTime() - t0) / 1e9;
  }
}
