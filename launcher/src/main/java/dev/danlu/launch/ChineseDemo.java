package dev.danlu.launch;

import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.data.vocab.BpeSpec;
import dev.danlu.data.vocab.BpeTrainer;
import dev.danlu.data.vocab.VocabMerge;
import dev.danlu.jobs.SparkSessions;
import dev.danlu.jobs.prep.PrepCli;
import dev.danlu.jobs.vocab.VocabTrainJob;
import dev.danlu.launch.demo.DemoCorpus;
import dev.danlu.launch.demo.StageTable;
import dev.danlu.train.checkpoint.SafeTensors;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.RandomInit;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * {@code danlu demo --chinese}: issue 15's vocabulary extension end to end in Spark local mode.
 * Tang poems from chinese-poetry (fetched by scripts/fetch-corpora.sh) → {@code vocab train} (BPE,
 * nmt_nfkc, alphabet + {@code merges} pieces) → {@code vocab merge} into LLaMA-2's 32000-piece
 * tokenizer → tokens per character of held-out poems with LLaMA-2's tokenizer, the Chinese one and
 * the merged one → {@code prep} with the merged tokenizer → a tiny random LLaMA with LLaMA-2's
 * vocabulary pretrained a few steps on it, embed_tokens and lm_head resized to the merged
 * vocabulary. Every run starts over (the stages take seconds to a minute each).
 */
final class ChineseDemo {
  private ChineseDemo() {}

  /** How big a run is; {@link #DEMO} for {@code bin/danlu demo --chinese}, tests use less. */
  record Size(
      long corpusBytes, int heldOutLines, int merges, int blockSize, int steps, int worldSize) {
    static final Size DEMO = new Size(2_000_000, 500, 2000, 128, 24, 2);
  }

  /** What a run produced. */
  record Report(
      int exitCode,
      StageTable table,
      int zhVocab,
      int added,
      int mergedVocab,
      double tpcBase,
      double tpcZh,
      double tpcMerged) {}

  static final long MODEL_SEED = 20240301L;
  static final String POEMS = "dist_quantangshi_poet.tang.";

  static Report execute(Path repo, Path work, boolean fresh, Size size, PrintStream out)
      throws Exception {
    if (System.getProperty("spark.log.level") == null) {
      System.setProperty("spark.log.level", "WARN");
    }
    if (fresh) {
      DemoCommand.clear(work);
    }
    Files.createDirectories(work);
    if (!Files.isRegularFile(work.resolve(DemoCommand.MARKER))) {
      try (var s = Files.list(work)) {
        if (s.findAny().isPresent()) {
          throw new IOException(
              work + " is not empty and was not made by danlu demo; pass another --work");
        }
      }
      Files.writeString(work.resolve(DemoCommand.MARKER), "created by danlu demo --chinese\n");
    }
    Path corpus = work.resolve("zh-corpus");
    Path zh = work.resolve("zh.model");
    Path merged = work.resolve("merged.model");
    Path shards = work.resolve("shards");
    Path model = work.resolve("tiny-llama");
    Path output = work.resolve("output");
    for (Path p : List.of(corpus, shards, model, output)) {
      if (Files.exists(p)) {
        DemoCommand.deleteTree(p); // every run starts over: a new corpus, tokenizer, dataset
      }
    }
    StageTable table = new StageTable();
    out.println("danlu demo --chinese: work directory " + work);

    // 1. corpus: Tang poems up to corpusBytes, the next file's first lines held out
    long t = System.nanoTime();
    DemoCorpus.Sources src = DemoCorpus.ensure(repo, DemoCorpus.cacheDir(), out);
    Path poetry = DemoCorpus.cacheDir().resolve("corpora/chinese");
    List<Path> files = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(poetry, POEMS + "*.txt")) {
      ds.forEach(files::add);
    }
    if (files.size() < 2) {
      throw new IOException(
          poetry
              + " holds no chinese-poetry Tang poems ("
              + POEMS
              + "*.txt); run scripts/fetch-corpora.sh (it needs node/npm and registry.npmjs.org)");
    }
    files.sort(null);
    Files.createDirectories(corpus);
    long bytes = 0;
    int next = 0;
    while (next < files.size() - 1 && bytes < size.corpusBytes()) {
      Path f = files.get(next++);
      Files.copy(f, corpus.resolve(f.getFileName()));
      bytes += Files.size(f);
    }
    List<String> held = new ArrayList<>();
    for (String l : Files.readAllLines(files.get(next), StandardCharsets.UTF_8)) {
      if (!l.isBlank() && held.size() < size.heldOutLines()) {
        held.add(l);
      }
    }
    out.printf(
        "danlu demo --chinese: corpus: %d files of Tang poems, %.2f MB -> %s; %d held-out poems"
            + " from %s%n",
        next, bytes / 1e6, corpus, held.size(), files.get(next).getFileName());
    table.add("corpus", "done", secs(t), corpus.toString());

    // 2. vocab train on Spark local[2]: the alphabet at coverage 0.9995 plus `merges` pieces
    t = System.nanoTime();
    BpeSpec spec = BpeSpec.defaults(1);
    VocabTrainJob.Result trained;
    SparkSession spark = SparkSessions.open("danlu demo vocab train", "local[2]");
    try {
      JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
      VocabTrainJob.Words words = VocabTrainJob.count(sc, List.of(corpus.toString()), spec, 2, out);
      int alphabet = BpeTrainer.alphabet(words.counts(), spec.characterCoverage()).order().size();
      spec = spec.withVocabSize(alphabet + spec.metaPieces().size() + size.merges());
      trained = VocabTrainJob.train(words, spec);
    } finally {
      spark.stop();
    }
    Files.write(zh, trained.model());
    out.printf(
        "danlu demo --chinese: vocab train: %d pieces (alphabet %d + %d merges, %s) -> %s%n",
        spec.vocabSize(),
        trained.stats().alphabet(),
        trained.stats().merges(),
        spec.normalization(),
        zh);
    table.add("vocab train", "done", secs(t), zh.toString());

    // 3. vocab merge into LLaMA-2's tokenizer
    t = System.nanoTime();
    VocabMerge.Result m =
        VocabMerge.merge(
            Files.readAllBytes(src.tokenizerModel()),
            src.tokenizerModel().toString(),
            trained.model(),
            zh.toString());
    Files.write(merged, m.bytes());
    out.printf(
        "danlu demo --chinese: vocab merge: %d LLaMA-2 pieces + %d added = %d -> %s%n",
        m.baseSize(), m.added().size(), m.mergedSize(), merged);
    table.add("vocab merge", "done", secs(t), merged.toString());

    // 4. tokens per character of the held-out poems
    t = System.nanoTime();
    double tpcBase = tokensPerChar(src.tokenizerModel(), held);
    double tpcZh = tokensPerChar(zh, held);
    double tpcMerged = tokensPerChar(merged, held);
    out.printf(
        Locale.ROOT,
        "danlu demo --chinese: tokens per character of %d held-out poems: LLaMA-2 %.3f, Chinese"
            + " %.3f, merged %.3f (%.2fx fewer tokens than LLaMA-2)%n",
        held.size(),
        tpcBase,
        tpcZh,
        tpcMerged,
        tpcBase / tpcMerged);
    table.add(
        "tokens/char",
        "done",
        secs(t),
        String.format(Locale.ROOT, "%.3f -> %.3f", tpcBase, tpcMerged));

    // 5. prep with the merged tokenizer
    t = System.nanoTime();
    int rc =
        PrepCli.run(
            new String[] {
              "--input", corpus.toString(),
              "--tokenizer", merged.toString(),
              "--block-size", Integer.toString(size.blockSize()),
              "--output", shards.toString(),
              "--validation-fraction", "0.05",
              "--master", "local[2]",
              "--progress-seconds", "0"
            });
    if (rc != 0) {
      table.add("prep", "FAILED (exit " + rc + ")", secs(t), shards.toString());
      return finish(out, table, 1, spec.vocabSize(), m, tpcBase, tpcZh, tpcMerged);
    }
    table.add("prep", "done", secs(t), shards.toString());

    // 6. a tiny random LLaMA with LLaMA-2's 32000 pieces, pretrained on the merged vocabulary
    t = System.nanoTime();
    int baseVocab;
    try (TextTokenizer tok = TextTokenizer.load(src.tokenizerModel())) {
      baseVocab = tok.vocabSize();
    }
    RandomInit.writeHfDir(
        model,
        new LlamaConfig(
            DemoCommand.HIDDEN,
            DemoCommand.INTERMEDIATE,
            DemoCommand.LAYERS,
            DemoCommand.HEADS,
            DemoCommand.KV_HEADS,
            baseVocab,
            1e-5,
            10000.0,
            null,
            false,
            DemoCommand.MAX_POSITIONS),
        MODEL_SEED,
        src.tokenizerModel());
    rc =
        TrainCommand.run(
            new String[] {
              "--config",
              repo.resolve("conf/tiny-pretrain.yaml").toString(),
              "model_name_or_path=" + model,
              "tokenizer_name_or_path=" + merged,
              "dataset_dir=" + shards,
              "output_dir=" + output,
              "world_size=" + size.worldSize(),
              "max_steps=" + size.steps(),
              "save_steps=" + size.steps(),
              "eval_steps=" + size.steps(),
              "logging_steps=" + Math.max(1, size.steps() / 6),
              "--progress-interval-seconds",
              "5"
            },
            out,
            out,
            JavaSparkContext::new);
    Path adapter = output.resolve("pt_lora_model/adapter_model.safetensors");
    if (rc != 0 || !Files.isRegularFile(adapter)) {
      table.add("train", "FAILED (exit " + rc + ")", secs(t), output.toString());
      return finish(out, table, 1, spec.vocabSize(), m, tpcBase, tpcZh, tpcMerged);
    }
    long[] embed;
    try (SafeTensors st = SafeTensors.open(adapter)) {
      embed = st.info(LoraAdapter.EMBED_KEY).shape();
    }
    out.printf(
        "danlu demo --chinese: trained %d steps; embed_tokens and lm_head resized from %d to %d"
            + " rows (adapter embed_tokens [%d, %d])%n",
        size.steps(), baseVocab, m.mergedSize(), embed[0], embed[1]);
    table.add("train", "done", secs(t), output.resolve("pt_lora_model").toString());
    return finish(out, table, 0, spec.vocabSize(), m, tpcBase, tpcZh, tpcMerged);
  }

  private static Report finish(
      PrintStream out,
      StageTable table,
      int exit,
      int zhVocab,
      VocabMerge.Result m,
      double tpcBase,
      double tpcZh,
      double tpcMerged) {
    out.println("\ndanlu demo --chinese: summary");
    table.print(out);
    return new Report(
        exit, table, zhVocab, m.added().size(), m.mergedSize(), tpcBase, tpcZh, tpcMerged);
  }

  /** Tokens per character (code point) of {@code lines}, no BOS/EOS. */
  static double tokensPerChar(Path tokenizer, List<String> lines) throws IOException {
    try (TextTokenizer t = TextTokenizer.load(tokenizer)) {
      long tokens = 0;
      long chars = 0;
      for (String l : lines) {
        tokens += t.encode(l).length;
        chars += l.codePointCount(0, l.length());
      }
      return tokens / (double) chars;
    } catch (IOException e) {
      throw e;
    } catch (Exception e) {
      throw new IOException("tokenizer " + tokenizer + ": " + e.getMessage(), e);
    }
  }

  private static double secs(long t0) {
    return (System.nanoTime() - t0) / 1e9;
  }
}
