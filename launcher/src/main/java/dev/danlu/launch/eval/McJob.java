package dev.danlu.launch.eval;

import dev.danlu.train.eval.ChoiceScorer;
import dev.danlu.train.eval.EvalModel;
import dev.danlu.train.eval.McSuite;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import scala.Tuple2;

/**
 * The multiple-choice questions spread over Spark tasks: contiguous slices of the questions in
 * subject order (so a task mostly holds whole subjects and reuses each subject's few-shot prefix),
 * each task scoring its slice with the executor's one model ({@link ModelCache}) and one KV cache
 * sized to its longest prompt. Every question's scores depend only on the question (its tokens and
 * its subject-wide prefix length), so 1, 2 or 4 tasks give the same bits.
 */
public final class McJob {
  private McJob() {}

  /** Scores of every question, per subject stem in question order. */
  public static Map<String, List<ChoiceScorer.Scored>> run(
      JavaSparkContext jsc,
      EvalModel spec,
      List<McSuite.Subject> subjects,
      ChoiceScorer.Choices choices,
      double temperature,
      boolean prefixCache,
      int tasks) {
    List<Tuple2<Integer, McSuite.Question>> all = new ArrayList<>();
    for (McSuite.Subject s : subjects) {
      for (McSuite.Question q : s.questions()) {
        all.add(new Tuple2<>(all.size(), q));
      }
    }
    int slices = Math.max(1, Math.min(tasks, all.size()));
    List<Tuple2<Integer, ChoiceScorer.Scored>> scored =
        jsc.parallelize(all, slices)
            .mapPartitions(new ScoreSlice(spec, choices, temperature, prefixCache))
            .collect();
    ChoiceScorer.Scored[] byIndex = new ChoiceScorer.Scored[all.size()];
    for (Tuple2<Integer, ChoiceScorer.Scored> t : scored) {
      byIndex[t._1()] = t._2();
    }
    Map<String, List<ChoiceScorer.Scored>> out = new HashMap<>();
    int i = 0;
    for (McSuite.Subject s : subjects) {
      List<ChoiceScorer.Scored> rs = new ArrayList<>();
      for (int k = 0; k < s.questions().size(); k++) {
        rs.add(byIndex[i++]);
      }
      out.put(s.stem(), rs);
    }
    return out;
  }

  /** One task: its slice of questions through one scorer. */
  static final class ScoreSlice
      implements FlatMapFunction<
          Iterator<Tuple2<Integer, McSuite.Question>>, Tuple2<Integer, ChoiceScorer.Scored>> {
    private final EvalModel spec;
    private final ChoiceScorer.Choices choices;
    private final double temperature;
    private final boolean prefixCache;

    ScoreSlice(
        EvalModel spec, ChoiceScorer.Choices choices, double temperature, boolean prefixCache) {
      this.spec = spec;
      this.choices = choices;
      this.temperature = temperature;
      this.prefixCache = prefixCache;
    }

    @Override
    public Iterator<Tuple2<Integer, ChoiceScorer.Scored>> call(
        Iterator<Tuple2<Integer, McSuite.Question>> it) {
      List<Tuple2<Integer, McSuite.Question>> slice = new ArrayList<>();
      it.forEachRemaining(slice::add);
      List<Tuple2<Integer, ChoiceScorer.Scored>> out = new ArrayList<>();
      if (slice.isEmpty()) {
        return out.iterator();
      }
      int longest = 0;
      for (Tuple2<Integer, McSuite.Question> t : slice) {
        longest = Math.max(longest, t._2().ids().length);
      }
      ChoiceScorer scorer =
          new ChoiceScorer(ModelCache.merged(spec), choices, temperature, longest, prefixCache);
      for (Tuple2<Integer, McSuite.Question> t : slice) {
        McSuite.Question q = t._2();
        out.add(new Tuple2<>(t._1(), scorer.score(q.ids(), q.prefixLen())));
      }
      return out.iterator();
    }
  }
}
