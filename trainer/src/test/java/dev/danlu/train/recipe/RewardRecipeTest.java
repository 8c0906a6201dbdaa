package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.config.TrainConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code stage: rm} through the real loop on the tiny model and the synthetic preference of {@link
 * PairDatasets}: the reward model separates held-out pairs, writes its head with TRL's names beside
 * a PEFT adapter without it, and 1 rank gives what 2 ranks give (head included).
 */
class RewardRecipeTest {
  @TempDir static Path tmp;
  static Path model;
  static Path data;

  @BeforeAll
  static void setUp() throws Exception {
    model = TinyRun.writeModel(tmp.resolve("model"), TinyRun.tinyConfig(), 11);
    data = PairDatasets.write(tmp.resolve("pairs"), 9, 64, 16);
  }

  static TrainConfig cfg(Path out, String... extra) {
    List<String> o =
        new ArrayList<>(
            List.of(
                "stage=rm",
                "learning_rate=1e-2",
                "lora_dropout=0.1",
                "per_device_train_batch_size=2",
                "per_device_eval_batch_size=4",
                "logging_steps=10"));
    o.addAll(List.of(extra));
    return TinyRun.config(model, data, out, o.toArray(String[]::new));
  }

  @Test
  void separatesHeldOutPairs() throws Exception {
    Path out = tmp.resolve("learn");
    String log =
        Ranks.run(1, cfg(out, "max_steps=40", "gradient_accumulation_steps=2", "eval_steps=40"));
    System.out.print(log);
    double accuracy = DpoRecipeTest.metric(log, "eval_rewards/accuracies");
    double margin = DpoRecipeTest.metric(log, "eval_rewards/margins");
    assertTrue(accuracy >= 0.9, "held-out accuracy " + accuracy + "\n" + log);
    assertTrue(margin > 1.0, "held-out margin " + margin + "\n" + log);
    Path dir = out.resolve("rm_lora_model");
    Map<String, float[]> head = Ranks.tensors(dir.resolve(ValueHead.FILE));
    assertEquals(16, head.get(ValueHead.WEIGHT).length);
    assertEquals(1, head.get(ValueHead.BIAS).length);
    Map<String, float[]> adapter = Ranks.tensors(dir.resolve("adapter_model.safetensors"));
    assertFalse(adapter.keySet().stream().anyMatch(k -> k.startsWith("v_head")), "PEFT file");
    assertTrue(Files.isRegularFile(dir.resolve("adapter_config.json")));
  }

  @Test
  void resumeRestoresTheHeadAndEqualsTheUninterruptedRun() throws Exception {
    Path straight = tmp.resolve("straight");
    Ranks.run(2, cfg(straight, "max_steps=6", "gradient_accumulation_steps=1"));
    Path resumed = tmp.resolve("resumed");
    TrainConfig c = cfg(resumed, "max_steps=6", "gradient_accumulation_steps=1", "save_steps=3");
    ProgressListener crash =
        (step, max, loss, tps, eta, secs) -> {
          if (step == 4) {
            throw new IllegalStateException("simulated crash at step 4");
          }
        };
    Exception e =
        org.junit.jupiter.api.Assertions.assertThrows(
            Exception.class, () -> Ranks.run(2, c, crash));
    assertTrue(e.getMessage().contains("simulated crash"), e.toString());
    String log = Ranks.run(2, c);
    assertTrue(log.contains("at step 3"), log);
    // the head lives only in the checkpoint's optimizer state: a resume that lost it would
    // restart it from its initial values and end elsewhere
    for (String f : List.of("adapter_model.safetensors", ValueHead.FILE)) {
      Map<String, float[]> a = Ranks.tensors(straight.resolve("rm_lora_model").resolve(f));
      Map<String, float[]> b = Ranks.tensors(resumed.resolve("rm_lora_model").resolve(f));
      double err = Ranks.relError(b, a);
      assertTrue(err <= 1e-6, f + ": resumed vs uninterrupted " + err);
    }
  }

  @Test
  void oneRankEqualsTwoHeadIncluded() throws Exception {
    Path one = tmp.resolve("one");
    Ranks.run(1, cfg(one, "max_steps=6", "gradient_accumulation_steps=2"));
    Path two = tmp.resolve("two");
    Ranks.run(2, cfg(two, "max_steps=6", "gradient_accumulation_steps=1"));
    for (String f : List.of("adapter_model.safetensors", ValueHead.FILE)) {
      Map<String, float[]> a = Ranks.tensors(one.resolve("rm_lora_model").resolve(f));
      Map<String, float[]> b = Ranks.tensors(two.resolve("rm_lora_model").resolve(f));
      // gradients summed in another order (a few ulps per entry), then 6 Adam steps at lr 1e-2
      // on lora_B tensors that started at 0: Adam's m/√v amplifies the relative difference of
      // entries whose gradient is small against √v. Measured worst 1.2e-6 (a lora_B); bound 5e-6
      double err = Ranks.relError(b, a);
      assertTrue(err <= 5e-6, f + ": 1 rank x 2 micro-batches vs 2 ranks x 1: " + err);
    }
  }
}
