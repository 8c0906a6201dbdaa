package dev.danlu.train.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintStream;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The results of a multiple-choice run as the reference reports them: per subject the accuracy in
 * percent (100 · correct / questions, eval.py's {@code correct_ratio}), per category and overall
 * the question-weighted accuracy (eval.py's {@code grouped} and {@code All}: summed correct over
 * summed questions — written there as fractions, here in percent like the subjects). Subjects
 * without answers (test splits) get predictions, {@code "answer": "NA"} and a null accuracy, and
 * count in no average.
 */
public final class McReport {
  private McReport() {}

  /** Tally of one group of questions. */
  private static final class Tally {
    long correct;
    long questions;

    Double percent() {
      return questions == 0 ? null : 100.0 * correct / questions;
    }
  }

  /**
   * The output JSON; {@code results} holds each question's scores in the order of {@code subjects}'
   * questions.
   */
  public static ObjectNode json(
      McBenchmark b,
      McSuite.Options o,
      List<McSuite.Subject> subjects,
      Map<String, List<ChoiceScorer.Scored>> results) {
    ObjectMapper om = new ObjectMapper();
    ObjectNode root = om.createObjectNode();
    root.put("benchmark", b.id());
    root.put("shots", o.shots());
    root.put("with_prompt", o.withPrompt());
    ObjectNode subs = root.putObject("subjects");
    Map<String, Tally> cats = new LinkedHashMap<>();
    for (String c : b.categories()) {
      cats.put(c, new Tally());
    }
    Tally all = new Tally();
    for (McSuite.Subject s : subjects) {
      List<ChoiceScorer.Scored> rs = results.get(s.stem());
      ObjectNode sn = subs.putObject(s.stem());
      Tally t = new Tally();
      ArrayNode qs = om.createArrayNode();
      for (int i = 0; i < s.questions().size(); i++) {
        McSuite.Question q = s.questions().get(i);
        ChoiceScorer.Scored r = rs.get(i);
        if (!q.answer().equals("NA")) {
          t.questions++;
          t.correct += r.pred().equals(q.answer()) ? 1 : 0;
        }
        ObjectNode qn = qs.addObject();
        qn.put("index", q.index());
        qn.put("pred", r.pred());
        qn.put("answer", q.answer());
        ArrayNode sc = qn.putArray("scores");
        for (double v : r.scores()) {
          sc.add(v);
        }
        if (q.shots() != o.shots()) {
          qn.put("shots", q.shots());
        }
      }
      Double acc = t.percent();
      if (acc == null) {
        sn.putNull("accuracy");
      } else {
        sn.put("accuracy", acc);
      }
      sn.put("dropped_shots", s.droppedShots(o.shots()));
      sn.set("questions", qs);
      if (t.questions > 0) {
        all.correct += t.correct;
        all.questions += t.questions;
        for (String c : b.categoriesOf(s.name())) {
          Tally ct = cats.get(c);
          ct.correct += t.correct;
          ct.questions += t.questions;
        }
      }
    }
    ObjectNode cn = root.putObject("categories");
    for (Map.Entry<String, Tally> e : cats.entrySet()) {
      if (e.getValue().questions > 0) {
        ObjectNode c = cn.putObject(e.getKey());
        c.put("accuracy", e.getValue().percent());
        c.put("questions", e.getValue().questions);
      }
    }
    if (all.questions > 0) {
      root.put("overall", all.percent());
    } else {
      root.putNull("overall");
    }
    return root;
  }

  /** The table on stdout: subjects, categories, overall. */
  public static void table(ObjectNode json, PrintStream out) {
    out.printf("%-45s %9s %9s %8s%n", "subject", "questions", "accuracy", "dropped");
    json.get("subjects")
        .fields()
        .forEachRemaining(
            e ->
                out.printf(
                    "%-45s %9d %9s %8d%n",
                    e.getKey(),
                    e.getValue().get("questions").size(),
                    pct(e.getValue().get("accuracy")),
                    e.getValue().get("dropped_shots").asInt()));
    out.println();
    out.printf("%-45s %9s %9s%n", "category", "questions", "accuracy");
    json.get("categories")
        .fields()
        .forEachRemaining(
            e ->
                out.printf(
                    "%-45s %9d %9s%n",
                    e.getKey(),
                    e.getValue().get("questions").asLong(),
                    pct(e.getValue().get("accuracy"))));
    out.printf("%-45s %9s %9s%n", "overall", "", pct(json.get("overall")));
  }

  private static String pct(com.fasterxml.jackson.databind.JsonNode n) {
    return n == null || n.isNull() ? "-" : String.format("%.2f", n.asDouble());
  }
}
