package dev.danlu.launch.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.data.cli.CliSupport;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.testkit.Prereq;
import dev.danlu.train.comm.Communicator;
import dev.danlu.train.comm.LocalCommunicator;
import dev.danlu.train.data.ShardBlocks;
import dev.danlu.train.eval.ChunkPerplexity;
import dev.danlu.train.eval.EvalFixtures;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.Llama;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.model.NtkAlpha;
import dev.danlu.train.recipe.Evaluator;
import dev.danlu.train.recipe.Objective;
import dev.danlu.train.recipe.RecipeTestSupport;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import picocli.CommandLine;

/**
 * {@code eval mc} and {@code eval ppl} end to end on one shared local[4] Spark context: results
 * identical for 1, 2 and 4 tasks (each question's and chunk's arithmetic is fixed by its own tokens
 * and its subject-wide prefix, whatever the partitioning), the prefix KV cache within 1e-4 of
 * running every prompt from its first token, the model loaded once per JVM, the dataset perplexity
 * equal to the training loop's 2-rank validation loss, and bad inputs refused in one line naming
 * the file and row before Spark starts.
 */
class EvalCommandTest {
  @TempDir static Path tmp;
  static JavaSparkContext jsc;
  static Path model;
  static Path data;
  static Path dev;

  @BeforeAll
  static void setUp() throws Exception {
    Path cmmlu = Prereq.shared("fixtures/eval/cmmlu-dev");
    Path tokenizer = Prereq.shared("fixtures/tokenizers/chinese-llama2-tokenizer.model");
    model =
        EvalFixtures.writeModel(
            tmp.resolve("model"), EvalFixtures.config(55296, 1024), 3, tokenizer);
    data = Files.createDirectories(tmp.resolve("data"));
    dev = Files.createDirectories(tmp.resolve("dev"));
    for (String s : List.of("agronomy", "arts", "genetics")) {
      Files.copy(cmmlu.resolve(s + ".csv"), data.resolve(s + ".csv"));
      Files.copy(cmmlu.resolve(s + ".csv"), dev.resolve(s + ".csv"));
    }
    jsc =
        new JavaSparkContext(
            new SparkConf()
                .setMaster("local[4]")
                .setAppName("EvalCommandTest")
                .set("spark.ui.enabled", "false")
                .set("spark.driver.host", "127.0.0.1")
                .set("spark.driver.bindAddress", "127.0.0.1"));
  }

  @AfterAll
  static void tearDown() {
    if (jsc != null) {
      jsc.stop();
    }
  }

  record Run(int code, String out, String err) {}

  static Run eval(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
    PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8);
    SparkRunner spark = SparkRunner.shared(jsc);
    CommandLine cl =
        new CommandLine(new EvalCommand())
            .addSubcommand(new PplCommand(o, e, spark))
            .addSubcommand(new McCommand(o, e, spark));
    cl.setCommandName("danlu eval");
    int code = CliSupport.configure(cl, o, e).execute(args);
    return new Run(
        code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  private static Path mc(String name, String... extra) throws Exception {
    Path outFile = tmp.resolve(name);
    List<String> args =
        new ArrayList<>(
            List.of(
                "mc",
                "--benchmark",
                "cmmlu",
                "--model",
                model.toString(),
                "--data",
                data.toString(),
                "--dev",
                dev.toString(),
                "--shots",
                "2",
                "--output",
                outFile.toString()));
    args.addAll(List.of(extra));
    Run r = eval(args.toArray(new String[0]));
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("overall"), r.out());
    return outFile;
  }

  @Test
  void multipleChoiceIsTheSameOn1And2And4TasksAndWithoutTheCache() throws Exception {
    byte[] one = Files.readAllBytes(mc("t1.json", "--tasks", "1"));
    int loads = ModelCache.loads();
    byte[] two = Files.readAllBytes(mc("t2.json", "--tasks", "2"));
    byte[] four = Files.readAllBytes(mc("t4.json", "--tasks", "4"));
    assertArrayEquals(one, two, "1 vs 2 tasks");
    assertArrayEquals(one, four, "1 vs 4 tasks");
    assertEquals(loads, ModelCache.loads(), "the model is loaded once per JVM, not per task");

    JsonNode cached = new ObjectMapper().readTree(one);
    JsonNode plain =
        new ObjectMapper()
            .readTree(mc("nocache.json", "--tasks", "2", "--no-prefix-cache").toFile());
    int questions = 0;
    int correct = 0;
    for (String s : List.of("agronomy", "arts", "genetics")) {
      JsonNode a = cached.get("subjects").get(s).get("questions");
      JsonNode b = plain.get("subjects").get(s).get("questions");
      assertEquals(5, a.size(), s);
      int subjectCorrect = 0;
      for (int i = 0; i < a.size(); i++) {
        assertEquals(i, a.get(i).get("index").asInt());
        assertEquals(a.get(i).get("pred").asText(), b.get(i).get("pred").asText(), s + " #" + i);
        for (int k = 0; k < 4; k++) {
          double x = a.get(i).get("scores").get(k).asDouble();
          assertEquals(x, b.get(i).get("scores").get(k).asDouble(), 1e-4, s + " #" + i);
        }
        if (a.get(i).get("pred").asText().equals(a.get(i).get("answer").asText())) {
          subjectCorrect++;
        }
      }
      assertEquals(
          100.0 * subjectCorrect / 5,
          cached.get("subjects").get(s).get("accuracy").asDouble(),
          1e-9);
      questions += 5;
      correct += subjectCorrect;
    }
    assertEquals(100.0 * correct / questions, cached.get("overall").asDouble(), 1e-9);
    // agronomy → Other, arts → Humanities, genetics → STEM
    assertEquals(5, cached.get("categories").get("STEM").get("questions").asInt());
    assertEquals(5, cached.get("categories").get("Other").get("questions").asInt());
  }

  @Test
  void textPerplexityIsTheSameOnAnyTaskCountAndEqualsTheTrainerClass() throws Exception {
    Path stories = Prereq.shared("fixtures/stories260K");
    Path text = tmp.resolve("story.txt");
    Files.writeString(
        text,
        ("Lily and Ben went to the park. They saw a big dog with a red ball. The dog was happy and"
                + " ran to them. \"Can we play?\" Lily asked. Mom said yes.\n")
            .repeat(6),
        StandardCharsets.UTF_8);
    List<JsonNode> results = new ArrayList<>();
    for (String tasks : List.of("1", "3")) {
      Path outFile = tmp.resolve("ppl" + tasks + ".json");
      Run r =
          eval(
              "ppl",
              "--model",
              stories.toString(),
              "--text",
              text.toString(),
              "--ctx",
              "64",
              "--tasks",
              tasks,
              "--output",
              outFile.toString());
      assertEquals(0, r.code(), r.err());
      assertTrue(r.out().contains("Final estimate: PPL = "), r.out());
      assertTrue(r.out().startsWith("[1]"), r.out());
      results.add(new ObjectMapper().readTree(outFile.toFile()));
    }
    assertEquals(results.get(0), results.get(1));
    LlamaWeights w = HfLlama.load(stories, DataType.FLOAT);
    try (TextTokenizer tok = TextTokenizer.load(stories.resolve("tokenizer.model"))) {
      int[] tokens =
          ChunkPerplexity.tokens(
              tok.bosId(), tok.encode(Files.readString(text, StandardCharsets.UTF_8)));
      ChunkPerplexity.Result direct = ChunkPerplexity.run(w, null, tokens, 64, tok.bosId());
      // the same chunk arithmetic, summed in chunk order on both sides
      assertEquals(direct.perplexity(), results.get(0).get("perplexity").asDouble(), 0.0);
      assertEquals(direct.nll(), results.get(0).get("nll").asDouble(), 0.0);
      assertEquals(direct.tokens(), results.get(0).get("tokens").asLong());

      // --ntk-alpha 4: the weights' rotary base scaled as the reference's fixed alpha
      Path ntkOut = tmp.resolve("ppl-ntk.json");
      Run r =
          eval(
              "ppl",
              "--model",
              stories.toString(),
              "--text",
              text.toString(),
              "--ctx",
              "64",
              "--ntk-alpha",
              "4",
              "--output",
              ntkOut.toString());
      assertEquals(0, r.code(), r.err());
      JsonNode ntk = new ObjectMapper().readTree(ntkOut.toFile());
      ChunkPerplexity.Result scaled =
          ChunkPerplexity.run(
              w.withNtk(NtkAlpha.parse("4", "alpha")), null, tokens, 64, tok.bosId());
      assertEquals(scaled.perplexity(), ntk.get("perplexity").asDouble(), 0.0);
      assertTrue(Math.abs(scaled.perplexity() - direct.perplexity()) > 1e-3 * direct.perplexity());
      Run bad =
          eval("ppl", "--model", stories.toString(), "--text", text.toString(), "--ntk-alpha", "x");
      assertEquals(2, bad.code(), bad.err());
      assertTrue(bad.err().contains("--ntk-alpha"), bad.err());
    }
  }

  @Test
  void datasetPerplexityIsTheTrainingLoopsValidationLoss() throws Exception {
    Path m = RecipeTestSupport.model(tmp.resolve("tiny"));
    Path shards = RecipeTestSupport.dataset(tmp.resolve("shards"));
    Path outFile = tmp.resolve("ppl-data.json");
    Run r =
        eval(
            "ppl",
            "--model",
            m.toString(),
            "--data",
            shards.toString(),
            "--output",
            outFile.toString());
    assertEquals(0, r.code(), r.err());
    JsonNode j = new ObjectMapper().readTree(outFile.toFile());
    // what a 2-rank training run's eval step computes on the same split
    LlamaWeights w = HfLlama.load(m, DataType.FLOAT);
    List<LocalCommunicator> comms = LocalCommunicator.group(2);
    List<CompletableFuture<Evaluator.Result>> fs = new ArrayList<>();
    for (Communicator c : comms) {
      fs.add(
          CompletableFuture.supplyAsync(
              () -> {
                try (ShardBlocks d = ShardBlocks.open(shards, 0, null, w.config().vocabSize())) {
                  return new Evaluator(w.config(), w, null, d, Objective.CAUSAL_LM, 2, c).run();
                } catch (Exception e) {
                  throw new IllegalStateException(e);
                }
              }));
    }
    Evaluator.Result train = fs.get(0).get();
    assertEquals(train.tokens(), j.get("tokens").asLong());
    // float32 all-reduce of (hi, lo) sums in another grouping: agreement to ~1e-7 relative
    assertEquals(train.loss(), j.get("nll").asDouble(), 1e-6 * train.loss());
    assertEquals(
        Math.exp(train.loss()), j.get("perplexity").asDouble(), 1e-5 * Math.exp(train.loss()));
    for (LocalCommunicator c : comms) {
      c.close();
    }

    // --split train: every train block scored, checked against each block's loss computed alone
    Path trainOut = tmp.resolve("ppl-train.json");
    Run t =
        eval(
            "ppl",
            "--model",
            m.toString(),
            "--data",
            shards.toString(),
            "--split",
            "train",
            "--output",
            trainOut.toString());
    assertEquals(0, t.code(), t.err());
    assertTrue(t.out().startsWith("train perplexity "), t.out());
    JsonNode tj = new ObjectMapper().readTree(trainOut.toFile());
    double sum = 0;
    long tokens = 0;
    try (ShardBlocks d = ShardBlocks.open(shards, 0, null, w.config().vocabSize())) {
      for (long row = 0; row < d.trainRows(); row++) {
        Batch b = d.trainBatch(new long[] {row}, 0);
        Batch one = new Batch(1, b.seq(), b.inputIds(), null, b.labels(), null, 0, false);
        LlamaState s = new LlamaState(w.config(), 1, b.seq(), null, false, DataType.FLOAT);
        sum += Llama.forward(w, null, s, one) * s.tokenCount();
        tokens += s.tokenCount();
      }
    }
    assertEquals(tokens, tj.get("tokens").asLong());
    assertEquals("train", tj.get("split").asText());
    // blocks of 1 here, of 8 in the command: products over other shapes, ~1e-7 relative apart
    assertEquals(sum / tokens, tj.get("nll").asDouble(), 1e-5 * sum / tokens);
    assertTrue(Math.abs(tj.get("nll").asDouble() - j.get("nll").asDouble()) > 1e-6);
    Run bad = eval("ppl", "--model", m.toString(), "--data", shards.toString(), "--split", "test");
    assertEquals(2, bad.code(), bad.err());
    assertTrue(bad.err().contains("--split: validation or train, not 'test'"), bad.err());
  }

  @Test
  void badInputsFailInOneLineNamingTheFileAndRow() throws Exception {
    String header = ",Question,A,B,C,D,Answer\n";
    check(header.replace(",D,", ",") + "0,问,a,b,c,x\n", "no 'D' column");
    check(header + "0,问,a,b,c,d,E\n", "line 2 (row 0): answer 'E' is not one of A, B, C, D");
    check(header, "no questions");
    // a tokenizer that does not match the model's vocabulary
    Path bad = Files.createDirectories(tmp.resolve("bad-vocab"));
    Files.writeString(bad.resolve("s.csv"), header + "0,问,a,b,c,d,A\n", StandardCharsets.UTF_8);
    Path small = Prereq.shared("fixtures/stories260K/tokenizer.model");
    Run r =
        eval(
            "mc",
            "--benchmark",
            "cmmlu",
            "--model",
            model.toString(),
            "--tokenizer",
            small.toString(),
            "--data",
            bad.toString(),
            "--shots",
            "0",
            "--output",
            tmp.resolve("x.json").toString());
    assertEquals(1, r.code(), r.err());
    assertTrue(r.err().startsWith("danlu eval mc: tokenizer " + small), r.err());
    assertTrue(r.err().contains("512 pieces") && r.err().contains("55296"), r.err());
    assertEquals(1, r.err().lines().count(), r.err());
  }

  private static void check(String csv, String expected) throws Exception {
    Path dir = Files.createTempDirectory(tmp, "bad");
    Path f = dir.resolve("subject.csv");
    Files.writeString(f, csv, StandardCharsets.UTF_8);
    Run r =
        eval(
            "mc",
            "--benchmark",
            "cmmlu",
            "--model",
            model.toString(),
            "--data",
            dir.toString(),
            "--shots",
            "0",
            "--output",
            dir.resolve("out.json").toString());
    assertEquals(1, r.code(), r.err());
    assertTrue(r.err().startsWith("danlu eval mc: " + f), r.err());
    assertTrue(r.err().contains(expected), r.err());
    assertEquals(1, r.err().lines().count(), r.err());
  }
}
