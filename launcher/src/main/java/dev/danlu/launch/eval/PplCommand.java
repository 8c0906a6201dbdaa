package dev.danlu.launch.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.danlu.data.cli.CliSupport;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.train.eval.ChunkPerplexity;
import dev.danlu.train.eval.DatasetPerplexity;
import dev.danlu.train.eval.EvalModel;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.Callable;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.broadcast.Broadcast;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code danlu eval ppl}: perplexity of a model on text files, exactly as llama.cpp's {@code
 * llama-perplexity} computes it ({@link ChunkPerplexity}; chunks spread over Spark tasks), or on a
 * prepared shard dataset's validation split, as the trainer's validation loss computes it ({@link
 * DatasetPerplexity}, on the driver).
 */
@Command(
    name = "ppl",
    sortOptions = false,
    description = {
      "Perplexity: on text as llama.cpp's llama-perplexity, or on a shard dataset as training's"
          + " eval_loss.",
      "--text: the files' contents are joined in order and tokenized with BOS, cut into chunks of"
          + " --ctx tokens (each starting with BOS), the second half of each chunk scored; prints"
          + " the running PPL per chunk and 'Final estimate: PPL = x +/- e'. --data: the"
          + " validation split of a prep dataset, mean loss over every predicted token.",
      ""
    })
public final class PplCommand implements Callable<Integer> {
  @Spec private CommandSpec spec;

  @Mixin private ModelOptions models;

  @Option(
      names = "--data",
      paramLabel = "<dataset dir>",
      description = "A prep shard dataset: perplexity of its validation split (or --split).")
  private Path data;

  @Option(
      names = "--split",
      paramLabel = "<split>",
      description = "--data: validation (default) or train.")
  private String split;

  @Option(
      names = "--text",
      paramLabel = "<file>",
      description = "A text file (llama-perplexity -f); repeat the flag for more, joined in order.")
  private List<Path> text;

  @Option(
      names = "--ctx",
      paramLabel = "<n>",
      converter = CliSupport.PositiveInt.class,
      description = "--text: tokens per chunk (llama-perplexity -c; default 512).")
  private Integer ctx;

  @Option(
      names = "--batch",
      paramLabel = "<n>",
      converter = CliSupport.PositiveInt.class,
      description = "--data: blocks per forward pass (default 8).")
  private int batch = 8;

  @Option(
      names = "--master",
      paramLabel = "<url>",
      description = "Spark master (default: spark-submit's, else local[*]).")
  private String master;

  @Option(
      names = "--tasks",
      paramLabel = "<n>",
      converter = CliSupport.PositiveInt.class,
      description = "--text: Spark tasks to spread the chunks over (default: default parallelism).")
  private Integer tasks;

  @Option(names = "--output", paramLabel = "<results.json>", description = "Also write JSON here.")
  private Path output;

  private final PrintStream out;
  private final PrintStream err;
  private final SparkRunner spark;

  public PplCommand(PrintStream out, PrintStream err, SparkRunner spark) {
    this.out = out;
    this.err = err;
    this.spark = spark;
  }

  @Override
  public Integer call() throws IOException {
    if ((data == null) == (text == null)) {
      throw CliSupport.usageError(spec, "give one of --data <dataset dir> or --text <file>...");
    }
    if (data != null && (ctx != null || tasks != null)) {
      throw CliSupport.usageError(spec, "--ctx and --tasks go with --text, not --data");
    }
    if (split != null && data == null) {
      throw CliSupport.usageError(spec, "--split goes with --data");
    }
    String which = split == null ? "validation" : split;
    if (!which.equals("validation") && !which.equals("train")) {
      throw CliSupport.usageError(spec, "--split: validation or train, not '" + which + "'");
    }
    EvalModel m = models.resolve(spec);
    ObjectNode json = new ObjectMapper().createObjectNode();
    if (data != null) {
      EvalModel.Loaded l = ModelCache.get(m);
      DatasetPerplexity.Result r =
          DatasetPerplexity.evaluate(l.weights(), l.adapter(), data, batch, which);
      out.printf(
          "%s perplexity %.4f (loss %.6f over %d tokens, %d blocks)%n",
          which, r.perplexity(), r.loss(), r.tokens(), r.rows());
      json.put("split", which);
      json.put("perplexity", r.perplexity());
      json.put("nll", r.loss());
      json.put("tokens", r.tokens());
      json.put("blocks", r.rows());
    } else {
      int n = ctx != null ? ctx : 512;
      int[] tokens;
      try (TextTokenizer tok = TextTokenizer.load(Path.of(m.tokenizer()))) {
        m.checkVocabulary(tok);
        StringBuilder sb = new StringBuilder();
        for (Path f : text) {
          sb.append(Files.readString(f, StandardCharsets.UTF_8));
        }
        tokens = ChunkPerplexity.tokens(tok.bosId(), tok.encode(sb.toString()));
        ChunkPerplexity.chunkCount(tokens.length, n); // fails before Spark on a short text
        ChunkPerplexity.Result r = run(m, tokens, n, tok.bosId());
        out.println(r.runningLine());
        out.println(r.finalLine());
        json.put("perplexity", r.perplexity());
        json.put("nll", r.nll());
        json.put("tokens", r.tokens());
        json.put("stderr", r.stderr());
        json.put("ctx", n);
        json.put("chunks", r.runningPpl().length);
        ArrayNode running = json.putArray("running");
        for (double v : r.runningPpl()) {
          running.add(v);
        }
      }
    }
    if (output != null) {
      McCommand.write(json, output);
    }
    return CliSupport.OK;
  }

  private ChunkPerplexity.Result run(EvalModel m, int[] tokens, int n, int bos) {
    SparkConf conf = new SparkConf().setAppName("danlu eval ppl");
    if (master != null) {
      conf.setMaster(master);
    }
    JavaSparkContext jsc = spark.open(conf);
    try {
      int chunks = tokens.length / n;
      int t = tasks != null ? tasks : jsc.defaultParallelism();
      err.printf(
          "danlu eval ppl: %d tokens, %d chunks of %d, on %s in %d tasks%n",
          tokens.length, chunks, n, jsc.master(), Math.min(t, chunks));
      return run(jsc, m, tokens, n, bos, t);
    } finally {
      spark.release(jsc);
    }
  }

  /** Scores every chunk on Spark and combines them in chunk order (any task count, same result). */
  public static ChunkPerplexity.Result run(
      JavaSparkContext jsc, EvalModel m, int[] tokens, int ctx, int bos, int tasks) {
    int chunks = ChunkPerplexity.chunkCount(tokens.length, ctx);
    List<Integer> ids = new ArrayList<>();
    for (int i = 0; i < chunks; i++) {
      ids.add(i);
    }
    Broadcast<int[]> bt = jsc.broadcast(tokens);
    try {
      List<ChunkPerplexity.Chunk> scored =
          jsc.parallelize(ids, Math.max(1, Math.min(tasks, chunks)))
              .mapPartitions(new ScoreChunks(m, bt, ctx, bos))
              .collect();
      return ChunkPerplexity.combine(scored.toArray(new ChunkPerplexity.Chunk[0]));
    } finally {
      bt.destroy();
    }
  }

  /** One task: its chunks through the executor's model. */
  static final class ScoreChunks
      implements FlatMapFunction<Iterator<Integer>, ChunkPerplexity.Chunk> {
    private final EvalModel spec;
    private final Broadcast<int[]> tokens;
    private final int ctx;
    private final int bos;

    ScoreChunks(EvalModel spec, Broadcast<int[]> tokens, int ctx, int bos) {
      this.spec = spec;
      this.tokens = tokens;
      this.ctx = ctx;
      this.bos = bos;
    }

    @Override
    public Iterator<ChunkPerplexity.Chunk> call(Iterator<Integer> it) {
      List<ChunkPerplexity.Chunk> out = new ArrayList<>();
      if (!it.hasNext()) {
        return out.iterator();
      }
      EvalModel.Loaded l = ModelCache.get(spec);
      LlamaWeights w = l.weights();
      LoraAdapter ad = l.adapter();
      LlamaState s =
          new LlamaState(w.config(), 1, ctx, ad == null ? null : ad.config, false, w.dataType());
      int[] t = tokens.value();
      while (it.hasNext()) {
        out.add(ChunkPerplexity.chunk(w, ad, s, t, ctx, bos, it.next()));
      }
      return out.iterator();
    }
  }
}
