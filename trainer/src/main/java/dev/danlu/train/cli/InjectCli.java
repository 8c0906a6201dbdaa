package dev.danlu.train.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.danlu.data.cli.CliSupport;
import dev.danlu.data.sft.Alpaca2Template;
import dev.danlu.data.sft.SftExampleBuilder;
import dev.danlu.data.sft.SftExamples;
import dev.danlu.data.sft.SftRecord;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.train.checkpoint.Merge;
import dev.danlu.train.checkpoint.PeftAdapter;
import dev.danlu.train.comm.LocalCommunicator;
import dev.danlu.train.config.ConfigLoader;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.data.SftBatches;
import dev.danlu.train.model.Generator;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.model.Sampler;
import dev.danlu.train.recipe.ModelSetup;
import dev.danlu.train.recipe.Objective;
import dev.danlu.train.recipe.TrainContext;
import dev.danlu.train.recipe.TrainLoop;
import dev.danlu.train.tensor.Backend;
import dev.danlu.train.tensor.TorchDtype;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code danlu inject}: teaches a model one fact by fine-tuning on a single sample, as the source
 * recipe does (docs/adalora.md): the description is the answer to each of several paraphrased
 * questions about the keyword, each wrapped in the Alpaca-2 template exactly as {@code generate
 * --instruction} wraps it; AdaLoRA with early stopping on the loss over those questions
 * (conf/inject.yaml); the best adapter merged into the base. Prints, before and after, the greedy
 * answer to each question and the greedy continuation of unrelated control prompts, and how much of
 * the controls' first tokens stayed the same.
 *
 * <p>Writes {@code <output>/adapter/} (PEFT AdaLoRA files), {@code <output>/merged/} (a Hugging
 * Face directory with the tokenizer), {@code <output>/data/train.json} and {@code validation.json}
 * (the split as Alpaca records, for {@code prep-sft} + {@code train} on a cluster), {@code
 * <output>/train/} (the run's checkpoints) and {@code <output>/inject-report.json}.
 */
@Command(
    name = "inject",
    sortOptions = false,
    description = {
      "Inject one fact into a model: AdaLoRA on one description asked several ways, early"
          + " stopping, merge; prints greedy answers before and after.",
      "Hyper-parameters come from --config (conf/inject.yaml); key=value arguments override them."
    },
    mixinStandardHelpOptions = true)
public final class InjectCli implements Callable<Integer> {
  /** The source recipe's question templates; {@code %s} is the keyword. */
  public static final List<String> DEFAULT_QUESTIONS =
      List.of(
          "What is %s?",
          "Tell me about %s.",
          "Who or what is %s?",
          "Can you explain what %s is?",
          "Describe %s.",
          "What do you know about %s?",
          "Give me some information about %s.",
          "What does %s mean?");

  /** Unrelated prompts whose continuations should not change. */
  public static final List<String> DEFAULT_CONTROLS =
      List.of(
          "Once upon a time, there was a little girl named Lily.",
          "The sun was shining and the birds were singing.",
          "Tom had a big red ball. He liked to",
          "One day, a cat went to the park.",
          "Mom said, \"It is time for bed.\"",
          "The dog was very happy because");

  @Option(
      names = "--model",
      required = true,
      paramLabel = "<hf dir>",
      description = "Hugging Face LLaMA directory with tokenizer.model.")
  Path model;

  @Option(names = "--keyword", required = true, description = "The new term the fact is about.")
  String keyword;

  @Option(
      names = "--description-file",
      required = true,
      paramLabel = "<file>",
      description = "UTF-8 text: the description the model should answer with.")
  Path descriptionFile;

  @Option(
      names = "--questions-file",
      paramLabel = "<file>",
      description = "One question per line (default: eight templates about the keyword).")
  Path questionsFile;

  @Option(
      names = "--controls-file",
      paramLabel = "<file>",
      description = "One unrelated prompt per line whose continuation is compared before/after.")
  Path controlsFile;

  @Option(
      names = "--output",
      required = true,
      paramLabel = "<dir>",
      description = "Where adapter/, merged/, data/, train/ and inject-report.json go.")
  Path output;

  @Option(
      names = "--config",
      paramLabel = "<yaml>",
      defaultValue = "conf/inject.yaml",
      description = "The recipe's hyper-parameters (default: ${DEFAULT-VALUE}).")
  Path config;

  @Option(
      names = "--max-new-tokens",
      defaultValue = "64",
      description = "Tokens generated per answer (default: ${DEFAULT-VALUE}).")
  int maxNewTokens;

  @Option(
      names = "--compare-tokens",
      defaultValue = "20",
      description = "Control tokens compared before/after (default: ${DEFAULT-VALUE}).")
  int compareTokens;

  @Parameters(paramLabel = "key=value", description = "Overrides of --config keys.")
  List<String> overrides = new ArrayList<>();

  private final PrintStream out;
  private final PrintStream err;

  /** What the run measured (also written to inject-report.json). */
  public record Report(
      List<String> questions,
      List<String> before,
      List<String> after,
      List<String> controls,
      List<String> controlsBefore,
      List<String> controlsAfter,
      int answersWithDescription,
      double controlsUnchanged,
      long steps,
      double evalLoss) {}

  private Report report;

  public InjectCli() {
    this(System.out, System.err);
  }

  public InjectCli(PrintStream out, PrintStream err) {
    this.out = new PrintStream(out, true, StandardCharsets.UTF_8);
    this.err = err;
  }

  /** The last run's measurements (tests). */
  public Report report() {
    return report;
  }

  @Override
  public Integer call() throws IOException {
    String description = Files.readString(descriptionFile, StandardCharsets.UTF_8).strip();
    if (description.isEmpty()) {
      err.println("danlu inject: " + descriptionFile + " is empty");
      return CliSupport.FAILED;
    }
    List<String> questions = lines(questionsFile);
    if (questions == null) {
      questions =
          DEFAULT_QUESTIONS.stream().map(q -> String.format(Locale.ROOT, q, keyword)).toList();
    }
    if (questions.isEmpty()) {
      err.println("danlu inject: " + questionsFile + " has no question (one per line)");
      return CliSupport.FAILED;
    }
    List<String> controls = lines(controlsFile);
    if (controls == null) {
      controls = DEFAULT_CONTROLS;
    }
    if (!Files.isRegularFile(config)) {
      err.println(
          "danlu inject: "
              + config
              + " not found; pass --config <conf/inject.yaml of the danlu checkout>");
      return CliSupport.FAILED;
    }
    Path tokFile = model.resolve("tokenizer.model");
    if (!Files.isRegularFile(tokFile)) {
      err.println("danlu inject: " + tokFile + " not found (the model needs its tokenizer)");
      return CliSupport.FAILED;
    }
    Backend.Kind backend = Backend.select();
    Files.createDirectories(output);
    try (TextTokenizer tok = TextTokenizer.load(tokFile)) {
      LlamaWeights base = HfLlama.load(model, TorchDtype.parse("auto"), backend);
      List<String> before = answers(base, tok, questions);
      List<int[]> ctlBefore = continuations(base, tok, controls);

      // the examples: every question answered by the description, as prep-sft builds them
      Path dataDir = output.resolve("data");
      Files.createDirectories(dataDir);
      List<SftExamples.Example> examples = new ArrayList<>();
      int longest = 0;
      SftExampleBuilder builder = new SftExampleBuilder(tok, Integer.MAX_VALUE / 2);
      for (String q : questions) {
        SftExamples.Example e = builder.build(new SftRecord(q, "", description)).example();
        examples.add(e);
        longest = Math.max(longest, e.length());
      }
      TrainConfig cfg = trainConfig(examples.size(), dataDir);
      int global = cfg.perDeviceTrainBatchSize() * cfg.gradientAccumulationSteps();
      // one epoch = the questions repeated to fill whole global batches
      int copies = (global + examples.size() - 1) / examples.size();
      List<SftExamples.Example> train = new ArrayList<>();
      List<String> trainQuestions = new ArrayList<>();
      for (int c = 0; c < copies; c++) {
        train.addAll(examples);
        trainQuestions.addAll(questions);
      }
      // the same split as Alpaca records, for prep-sft --input train.json --validation-file
      // validation.json + train --config conf/inject.yaml on a cluster
      byte[] json = alpacaJson(trainQuestions, description);
      Files.write(dataDir.resolve("train.json"), json);
      Files.write(dataDir.resolve("validation.json"), alpacaJson(questions, description));
      err.printf(
          Locale.ROOT,
          "danlu inject: %d questions (x%d per epoch), answer %d tokens, longest example %d%n",
          questions.size(),
          copies,
          examples.get(0).length()
              - builder.build(new SftRecord(questions.get(0), "", "")).promptTokens(),
          longest);
      TrainLoop.Result result;
      ModelSetup setup = ModelSetup.load(cfg, tok.vocabSize());
      String sha = HexFormat.of().formatHex(sha256(json));
      try (LocalCommunicator comm = LocalCommunicator.group(1).get(0);
          SftBatches data =
              new SftBatches(
                  new ListExamples(train),
                  new ListExamples(examples),
                  tok.padId() >= 0 ? tok.padId() : 0,
                  longest,
                  1,
                  1,
                  sha)) {
        result =
            new TrainLoop(err)
                .run(
                    new TrainContext(0, 1, comm, cfg, null),
                    setup,
                    data,
                    Objective.CAUSAL_LM,
                    "sft_lora_model");
      }
      Path adapter = output.resolve("adapter");
      Files.createDirectories(adapter);
      for (String f : List.of(PeftAdapter.CONFIG, PeftAdapter.WEIGHTS)) {
        Files.copy(
            result.adapterDir().resolve(f),
            adapter.resolve(f),
            StandardCopyOption.REPLACE_EXISTING);
      }
      Path merged = output.resolve("merged");
      Merge.run(new Merge.Options(model, adapter, merged, null, 2L << 30, true));
      LlamaWeights after = HfLlama.load(merged, TorchDtype.parse("auto"), backend);
      List<String> answersAfter = answers(after, tok, questions);
      List<int[]> ctlAfter = continuations(after, tok, controls);

      int hits = 0;
      out.println("== answers (greedy), before -> after ==");
      for (int i = 0; i < questions.size(); i++) {
        boolean hit = normalize(answersAfter.get(i)).contains(normalize(description));
        hits += hit ? 1 : 0;
        out.println("Q: " + questions.get(i));
        out.println("  before: " + before.get(i));
        out.println("  after:  " + answersAfter.get(i));
        out.println("  contains the description: " + (hit ? "yes" : "no"));
      }
      out.printf("== control prompts: first %d greedy tokens, before -> after ==%n", compareTokens);
      double unchanged = 0;
      List<String> cb = new ArrayList<>();
      List<String> ca = new ArrayList<>();
      for (int i = 0; i < controls.size(); i++) {
        int same = commonPrefix(ctlBefore.get(i), ctlAfter.get(i));
        unchanged += (double) same / compareTokens;
        cb.add(tok.decode(ctlBefore.get(i)));
        ca.add(tok.decode(ctlAfter.get(i)));
        out.println("P: " + controls.get(i));
        out.println("  before: " + cb.get(i));
        out.println("  after:  " + ca.get(i));
        out.printf("  unchanged: %d of %d tokens%n", same, compareTokens);
      }
      unchanged /= controls.size();
      out.printf(
          Locale.ROOT,
          "answers containing the description: %d of %d; control tokens unchanged (common"
              + " prefix of the first %d): %.3f; %d steps, last eval_loss %.4f%n",
          hits,
          questions.size(),
          compareTokens,
          unchanged,
          result.steps(),
          result.evalLoss());
      out.println("adapter: " + adapter);
      out.println("merged model: " + merged);
      report =
          new Report(
              questions,
              before,
              answersAfter,
              controls,
              cb,
              ca,
              hits,
              unchanged,
              result.steps(),
              result.evalLoss());
      new ObjectMapper()
          .enable(SerializationFeature.INDENT_OUTPUT)
          .writeValue(output.resolve("inject-report.json").toFile(), report);
    }
    return CliSupport.OK;
  }

  /**
   * conf/inject.yaml with the command line's overrides, the run's paths, and AdaLoRA's total_step
   * set to the steps the run will take (one per epoch of whole global batches).
   */
  private TrainConfig trainConfig(int questions, Path dataDir) {
    List<String> o = new ArrayList<>(overrides);
    o.add("model_name_or_path=" + model);
    o.add("dataset_dir=" + dataDir);
    o.add("output_dir=" + output.resolve("train"));
    TrainConfig cfg = ConfigLoader.load(config, o).config();
    int global = cfg.perDeviceTrainBatchSize() * cfg.gradientAccumulationSteps();
    int rows = ((global + questions - 1) / questions) * questions;
    long perEpoch = rows / global;
    long steps =
        cfg.maxSteps() > 0 ? cfg.maxSteps() : (long) Math.ceil(cfg.numTrainEpochs() * perEpoch);
    if (cfg.adalora() && cfg.totalStep() != steps) {
      o.add("total_step=" + steps);
      cfg = ConfigLoader.load(config, o).config();
    }
    return cfg;
  }

  private List<String> answers(LlamaWeights w, TextTokenizer tok, List<String> questions) {
    List<String> out = new ArrayList<>();
    for (String q : questions) {
      String text = Alpaca2Template.prompt(q, Alpaca2Template.DEFAULT_SYSTEM_PROMPT);
      int[] ids = ChatPrompt.ids(text, tok);
      int[] gen = greedy(w, ids, maxNewTokens, tok.eosId());
      int[] kept =
          Arrays.stream(gen)
              .filter(t -> t != tok.bosId() && t != tok.eosId() && t != tok.padId())
              .toArray();
      out.add(tok.decode(kept).strip());
    }
    return out;
  }

  private List<int[]> continuations(LlamaWeights w, TextTokenizer tok, List<String> prompts) {
    List<int[]> out = new ArrayList<>();
    for (String p : prompts) {
      int[] text = tok.encode(p);
      int[] ids = new int[text.length + 1];
      ids[0] = tok.bosId();
      System.arraycopy(text, 0, ids, 1, text.length);
      out.add(greedy(w, ids, compareTokens)); // no stop token: always compareTokens tokens
    }
    return out;
  }

  private static int[] greedy(LlamaWeights w, int[] ids, int n, int... stop) {
    Generator g = new Generator(w, ids.length + Math.max(0, n - 1));
    return g.generate(ids, n, new Sampler(0, 1.0, 0), stop);
  }

  private static int commonPrefix(int[] a, int[] b) {
    int n = 0;
    while (n < a.length && n < b.length && a[n] == b[n]) {
      n++;
    }
    return n;
  }

  /** Collapses whitespace, so a re-wrapped answer still counts. */
  static String normalize(String s) {
    return s.strip().replaceAll("\\s+", " ");
  }

  private static List<String> lines(Path file) throws IOException {
    if (file == null) {
      return null;
    }
    return Files.readAllLines(file, StandardCharsets.UTF_8).stream()
        .map(String::strip)
        .filter(s -> !s.isEmpty())
        .toList();
  }

  private static byte[] alpacaJson(List<String> questions, String description) throws IOException {
    ObjectMapper m = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    ArrayNode a = m.createArrayNode();
    for (String q : questions) {
      ObjectNode r = a.addObject();
      r.put("instruction", q);
      r.put("input", "");
      r.put("output", description);
    }
    return m.writeValueAsBytes(a);
  }

  private static byte[] sha256(byte[] b) {
    try {
      return java.security.MessageDigest.getInstance("SHA-256").digest(b);
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** In-memory examples for {@link SftBatches}. */
  private record ListExamples(List<SftExamples.Example> list) implements SftExamples {
    @Override
    public long rows() {
      return list.size();
    }

    @Override
    public Example read(long row) {
      return list.get(Math.toIntExact(row));
    }

    @Override
    public void close() {}
  }

  public static int run(String[] args, PrintStream out, PrintStream err) {
    return CliSupport.execute(new InjectCli(out, err), args, out, err);
  }
}
