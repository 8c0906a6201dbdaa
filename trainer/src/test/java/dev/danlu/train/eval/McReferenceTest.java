package dev.danlu.train.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.testkit.Prereq;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.LlamaWeights;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * danlu's C-Eval/CMMLU scoring against eval_reference.py (pandas + sentencepiece + float64 torch,
 * no Hugging Face libraries) on CMMLU dev questions from ../shared and a small random model with
 * the Chinese-LLaMA-2 vocabulary: the same letters, and scores within 1e-4 (the model runs in
 * float32 here, float64 there; scores are logits / 0.2 of magnitude ~10, so float32 rounding leaves
 * ~1e-5), with and without the prefix KV cache.
 */
class McReferenceTest {
  @TempDir static Path tmp;
  static Path model;
  static Path tokenizer;
  static Path dev;
  static Path data;
  static LlamaWeights weights;
  static TextTokenizer tok;

  /** A long math subject (numbers through pandas), long prompts, and two ordinary ones. */
  static final List<String> SUBJECTS =
      List.of("agronomy", "college_actuarial_science", "chinese_civil_service_exam", "quirks");

  /**
   * A subject whose cells exercise pandas' type inference: integers with leading zeros and signs,
   * floats that print shorter or longer than written, an NA string in a text column, an integer
   * column with a missing cell (becomes float), quoted fields with commas, quotes and newlines.
   */
  static final String QUIRKS =
      ",Question,A,B,C,D,Answer\n"
          + "0,下列哪个数最大,007,1.50,None,3,A\n"
          + "1,\"含有逗号, 和\"\"引号\"\"的题目\",+12,2,文本,,B\n"
          + "2,\"跨行\n的题目\",-3,1e-5,N/A,5,C\n"
          + "3,最后一题,0,1e16,是,7,D\n"
          + "4,TRUE,true,False,null,0.1,A\n";

  @BeforeAll
  static void setUp() throws Exception {
    Prereq.python("numpy", "torch", "sentencepiece", "pandas");
    Path cmmlu = Prereq.shared("fixtures/eval/cmmlu-dev");
    tokenizer = Prereq.shared("fixtures/tokenizers/chinese-llama2-tokenizer.model");
    model =
        EvalFixtures.writeModel(
            tmp.resolve("model"), EvalFixtures.config(55296, 2048), 7, tokenizer);
    data = Files.createDirectories(tmp.resolve("data"));
    dev = Files.createDirectories(tmp.resolve("dev"));
    for (String s : SUBJECTS) {
      if (s.equals("quirks")) {
        Files.writeString(data.resolve("quirks.csv"), QUIRKS, StandardCharsets.UTF_8);
        Files.writeString(dev.resolve("quirks.csv"), QUIRKS, StandardCharsets.UTF_8);
      } else {
        Files.copy(cmmlu.resolve(s + ".csv"), data.resolve(s + ".csv"));
        Files.copy(cmmlu.resolve(s + ".csv"), dev.resolve(s + ".csv"));
      }
    }
    weights = HfLlama.load(model, DataType.FLOAT);
    tok = TextTokenizer.load(tokenizer);
  }

  @AfterAll
  static void tearDown() {
    if (tok != null) {
      tok.close();
    }
  }

  @Test
  void zeroShotPlain() throws Exception {
    check(McBenchmark.CMMLU, 0, false, 2048);
  }

  @Test
  void zeroShotWithTemplate() throws Exception {
    check(McBenchmark.CMMLU, 0, true, 2048);
  }

  @Test
  void threeShotPlain() throws Exception {
    check(McBenchmark.CMMLU, 3, false, 2048);
  }

  @Test
  void fiveShotWithTemplate() throws Exception {
    check(McBenchmark.CMMLU, 5, true, 2048);
  }

  /** C-Eval's own system prompt and column names (the CMMLU files renamed to C-Eval's layout). */
  @Test
  void cevalLayoutFewShot() throws Exception {
    Path cdata = Files.createDirectories(tmp.resolve("ceval-data"));
    Path cdev = Files.createDirectories(tmp.resolve("ceval-dev"));
    for (String s : List.of("agronomy", "quirks")) {
      String csv = Files.readString(data.resolve(s + ".csv"), StandardCharsets.UTF_8);
      String c =
          "id"
              + csv.replaceFirst(",Question,", ",question,").replaceFirst(",Answer\n", ",answer\n");
      Files.writeString(cdata.resolve(s + "_val.csv"), c, StandardCharsets.UTF_8);
      Files.writeString(cdev.resolve(s + "_dev.csv"), c, StandardCharsets.UTF_8);
    }
    compare(McBenchmark.CEVAL, cdata, cdev, 2, true, 2048);
  }

  /** A context too short for 5 shots: examples dropped from the front, as the reference is told. */
  @Test
  void truncatedFewShot() throws Exception {
    List<McSuite.Subject> subs = compare(McBenchmark.CMMLU, data, dev, 5, false, 400);
    int dropped = 0;
    for (McSuite.Subject s : subs) {
      dropped += s.droppedShots(5);
    }
    assertTrue(dropped > 0, "a 400-token context should drop some examples");
  }

  private void check(McBenchmark b, int shots, boolean withPrompt, int maxLen) throws Exception {
    compare(b, data, dev, shots, withPrompt, maxLen);
  }

  private List<McSuite.Subject> compare(
      McBenchmark b, Path data, Path dev, int shots, boolean withPrompt, int maxLen)
      throws Exception {
    List<String> args =
        new ArrayList<>(
            List.of(
                "mc",
                "--model",
                model.toString(),
                "--tokenizer",
                tokenizer.toString(),
                "--benchmark",
                b.id(),
                "--data",
                data.toString(),
                "--dev",
                dev.toString(),
                "--shots",
                Integer.toString(shots),
                "--max-len",
                Integer.toString(maxLen)));
    if (withPrompt) {
      args.add("--with-prompt");
    }
    JsonNode ref = EvalFixtures.reference(Path.of(EvalFixtures.SCRIPT), args);
    McSuite.Options o = new McSuite.Options(b, data, dev, shots, withPrompt, false);
    List<McSuite.Subject> subs = McSuite.load(o, tok, maxLen);
    ChoiceScorer.Choices ch = ChoiceScorer.Choices.of(tok);
    int longest = 0;
    for (McSuite.Subject s : subs) {
      for (McSuite.Question q : s.questions()) {
        longest = Math.max(longest, q.ids().length);
      }
    }
    ChoiceScorer cached = new ChoiceScorer(weights, ch, ChoiceScorer.TEMPERATURE, longest, true);
    ChoiceScorer plain = new ChoiceScorer(weights, ch, ChoiceScorer.TEMPERATURE, longest, false);
    int n = 0;
    for (McSuite.Subject s : subs) {
      JsonNode rs = ref.get(s.stem());
      assertEquals(rs.size(), s.questions().size(), s.stem());
      for (int i = 0; i < s.questions().size(); i++) {
        McSuite.Question q = s.questions().get(i);
        JsonNode r = rs.get(i);
        String where = s.stem() + " #" + q.index();
        assertEquals(r.get("index").asInt(), q.index(), where);
        assertEquals(r.get("answer").asText(), q.answer(), where);
        assertEquals(r.get("shots").asInt(), q.shots(), where);
        for (ChoiceScorer sc : List.of(cached, plain)) {
          ChoiceScorer.Scored got = sc.score(q.ids(), q.prefixLen());
          assertEquals(r.get("pred").asText(), got.pred(), where);
          for (int k = 0; k < 4; k++) {
            assertEquals(r.get("scores").get(k).asDouble(), got.scores()[k], 1e-4, where);
          }
        }
        n++;
      }
    }
    assertTrue(n >= 10, "questions compared: " + n);
    return subs;
  }
}
