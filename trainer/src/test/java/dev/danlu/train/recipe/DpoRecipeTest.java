package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.config.TrainConfig;
import java.nio.file.Files;
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
 * {@code stage: dpo} through the real loop on the tiny model and a synthetic preference ({@link
 * PairDatasets}: chosen responses contain token 7): it learns the preference on held-out pairs,
 * logs TRL's metrics, gives the same adapter on 1 and 2 ranks, and a resumed run gives the
 * uninterrupted one.
 */
class DpoRecipeTest {
  @TempDir static Path tmp;
  static Path model;
  static Path data;

  @BeforeAll
  static void setUp() throws Exception {
    model = TinyRun.writeModel(tmp.resolve("model"), TinyRun.tinyConfig(), 11);
    data = PairDatasets.write(tmp.resolve("pairs"), 5, 64, 16);
  }

  static TrainConfig cfg(Path out, String... extra) {
    List<String> o =
        new ArrayList<>(
            List.of(
                "stage=dpo",
                "beta=0.5",
                "learning_rate=1e-2",
                "lora_dropout=0.1",
                "per_device_train_batch_size=2",
                "per_device_eval_batch_size=4",
                "logging_steps=5"));
    o.addAll(List.of(extra));
    return TinyRun.config(model, data, out, o.toArray(String[]::new));
  }

  static double metric(String log, String name) {
    Matcher m = Pattern.compile(Pattern.quote(name) + " (-?[0-9.]+)").matcher(log);
    double last = Double.NaN;
    while (m.find()) {
      last = Double.parseDouble(m.group(1));
    }
    return last;
  }

  @Test
  void learnsTheHeldOutPreferenceAndLogsTrlMetrics() throws Exception {
    Path out = tmp.resolve("learn");
    String log =
        Ranks.run(1, cfg(out, "max_steps=40", "gradient_accumulation_steps=2", "eval_steps=40"));
    System.out.print(log);
    // held-out pairs: the policy's chosen-minus-rejected margin over the reference's (TRL's
    // eval_rewards/margins = β(Δ log π − Δ log π_ref)) rose from exactly 0 at the start
    double margin = metric(log, "eval_rewards/margins");
    double accuracy = metric(log, "eval_rewards/accuracies");
    assertTrue(margin > 0.5, "held-out margin " + margin + "\n" + log);
    assertTrue(accuracy >= 0.9, "held-out accuracy " + accuracy + "\n" + log);
    for (String m : DpoObjective.METRICS) {
      assertTrue(log.contains(" " + m + " "), m + "\n" + log);
    }
    assertTrue(Files.isRegularFile(out.resolve("dpo_lora_model/adapter_model.safetensors")));
    assertTrue(log.contains("preference pairs"), log);
  }

  @Test
  void oneRankEqualsTwoAndResumeEqualsUninterrupted() throws Exception {
    Path one = tmp.resolve("one");
    Ranks.run(1, cfg(one, "max_steps=8", "gradient_accumulation_steps=2"));
    Path two = tmp.resolve("two");
    Ranks.run(2, cfg(two, "max_steps=8", "gradient_accumulation_steps=1"));
    Map<String, float[]> a = Ranks.tensors(one.resolve("dpo_lora_model/adapter_model.safetensors"));
    Map<String, float[]> b = Ranks.tensors(two.resolve("dpo_lora_model/adapter_model.safetensors"));
    // relative error bound as in ZeroEquivalenceTest: gradients summed in another order
    double err = Ranks.relError(b, a);
    assertTrue(err <= 1e-6, "1 rank x 2 micro-batches vs 2 ranks x 1: relative error " + err);

    Path resumed = tmp.resolve("resumed");
    ProgressListener crash =
        (step, max, loss, tps, eta, secs) -> {
          if (step == 5) {
            throw new IllegalStateException("simulated crash at step 5");
          }
        };
    TrainConfig c = cfg(resumed, "max_steps=8", "gradient_accumulation_steps=1", "save_steps=3");
    Exception e = assertThrows(Exception.class, () -> Ranks.run(2, c, crash));
    assertTrue(e.getMessage().contains("simulated crash"), e.toString());
    String log = Ranks.run(2, c);
    assertTrue(log.contains("at step 3"), log);
    Map<String, float[]> r =
        Ranks.tensors(resumed.resolve("dpo_lora_model/adapter_model.safetensors"));
    double rerr = Ranks.relError(r, b);
    assertEquals(0.0, rerr, 1e-6, "resumed vs uninterrupted");
  }

  @Test
  void pretrainingDataIsRefused() throws Exception {
    Path sft = TinyRun.writeTinyDataset(tmp.resolve("pt-data"), 4, 2);
    Exception e =
        assertThrows(
            Exception.class,
            () ->
                Ranks.run(
                    1, TinyRun.config(model, sft, tmp.resolve("x"), "stage=dpo", "max_steps=1")));
    assertTrue(e.getMessage().contains("not an instruction dataset"), e.toString());
  }
}
