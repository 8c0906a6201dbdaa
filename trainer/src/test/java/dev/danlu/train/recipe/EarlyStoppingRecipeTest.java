package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.checkpoint.TrainerState;
import dev.danlu.train.checkpoint.TrainingCheckpoint;
import dev.danlu.train.config.TrainConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Early stopping and load_best_model_at_end in the real training loop on 2 ranks: with a threshold
 * no evaluation can beat, training stops after exactly {@code patience} further evaluations; the
 * final adapter is the checkpoint of the evaluation with the lowest eval_loss (the log's numbers; a
 * learning rate high enough that it is not the last one); a run killed mid-way and resumed stops at
 * the same step with the same final adapter.
 */
class EarlyStoppingRecipeTest {
  @TempDir static Path tmp;
  static Path model;
  static Path data;

  @BeforeAll
  static void setUp() throws Exception {
    model = TinyRun.writeModel(tmp.resolve("model"), TinyRun.tinyConfig(), 11);
    data = TinyRun.writeTinyDataset(tmp.resolve("data"), 60, 6);
  }

  static TrainConfig cfg(Path out, String... extra) {
    List<String> o =
        new ArrayList<>(
            List.of(
                "max_steps=20",
                "gradient_accumulation_steps=3",
                "eval_steps=2",
                "save_steps=3",
                "learning_rate=0.3",
                "load_best_model_at_end=true",
                "early_stopping_patience=3",
                // no evaluation improves on the first by more than this: the counter only grows
                "early_stopping_threshold=100"));
    o.addAll(List.of(extra));
    return TinyRun.config(model, data, out, o.toArray(String[]::new));
  }

  /** (step, eval_loss) of every evaluation in the log. */
  static List<double[]> evals(String log) {
    List<double[]> out = new ArrayList<>();
    Matcher m = Pattern.compile("eval step (\\d+): eval_loss ([0-9.]+)").matcher(log);
    while (m.find()) {
      out.add(new double[] {Long.parseLong(m.group(1)), Double.parseDouble(m.group(2))});
    }
    return out;
  }

  @Test
  void stopsAfterPatienceEvaluationsAndKeepsTheBestCheckpoint() throws Exception {
    Path out = tmp.resolve("stop");
    String log = Ranks.run(2, cfg(out));
    List<double[]> e = evals(log);
    // evaluations at 2 (the first best), 4, 6, 8: the third without improvement stops at 8
    assertEquals(4, e.size(), log);
    assertTrue(log.contains("early stopping at step 8"), log);
    double[] best = e.get(0);
    for (double[] x : e) {
      if (x[1] < best[1]) {
        best = x;
      }
    }
    long bestStep = (long) best[0];
    TrainerState st = TrainingCheckpoint.readState(TrainingCheckpoint.dirFor(out, bestStep));
    assertEquals(bestStep, st.best().bestStep());
    Map<String, float[]> fin =
        Ranks.tensors(out.resolve("pt_lora_model/adapter_model.safetensors"));
    Map<String, float[]> atBest =
        Ranks.tensors(
            TrainingCheckpoint.dirFor(out, bestStep).resolve("adapter_model.safetensors"));
    assertEquals(0.0, Ranks.relError(fin, atBest), "final adapter = best checkpoint's (a copy)");
    // the retention limit (2) never deletes the best checkpoint
    assertTrue(TrainingCheckpoint.isCommitted(TrainingCheckpoint.dirFor(out, bestStep)));
    System.out.printf("early stopping: evaluations %s, best step %d%n", fmt(e), bestStep);

    // without load_best_model_at_end (and so without early stopping) the last weights are final
    Path last = tmp.resolve("last");
    Ranks.run(
        2, cfg(last, "load_best_model_at_end=false", "early_stopping_patience=0", "max_steps=8"));
    Map<String, float[]> plain =
        Ranks.tensors(last.resolve("pt_lora_model/adapter_model.safetensors"));
    if (bestStep != 8) {
      assertTrue(Ranks.relError(plain, fin) > 1e-4, "the best is not the last here");
    }

    // killed at step 7 (checkpoint-6 committed with the counter at 2), resumed on 3 ranks: stops
    // at 8 only if the counter and the best metric came back from the checkpoint
    Path resumed = tmp.resolve("resumed");
    ProgressListener crash =
        (step, max, loss, tps, eta, secs) -> {
          if (step == 7) {
            throw new IllegalStateException("simulated crash at step 7");
          }
        };
    assertThrows(Exception.class, () -> Ranks.run(2, cfg(resumed), crash));
    String log2 = Ranks.run(3, cfg(resumed, "gradient_accumulation_steps=2"));
    assertTrue(log2.contains("at step 6 (written by 2 ranks, now 3)"), log2);
    assertEquals(1, evals(log2).size(), log2);
    assertTrue(log2.contains("early stopping at step 8"), log2);
    Map<String, float[]> fin2 =
        Ranks.tensors(resumed.resolve("pt_lora_model/adapter_model.safetensors"));
    double err = Ranks.relError(fin2, fin);
    System.out.printf("early stopping resumed on 3 ranks vs uninterrupted: %.3e%n", err);
    assertTrue(err <= 1e-6, "relative error " + err);
  }

  private static String fmt(List<double[]> e) {
    StringBuilder b = new StringBuilder();
    for (double[] x : e) {
      b.append(String.format(java.util.Locale.ROOT, "(%d, %.4f) ", (long) x[0], x[1]));
    }
    return b.toString().trim();
  }
}
