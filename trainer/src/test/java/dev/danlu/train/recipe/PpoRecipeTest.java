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
 * {@code stage: ppo} through the real loop on the tiny model: a reward model trained first on the
 * synthetic preference of {@link PairDatasets} (responses containing token 7 are preferred), then
 * PPO on the pairs' prompts against it. The mean reward of the sampled responses rises, TRL's
 * statistics are logged, 1 rank × 2 micro-batches samples the same rollouts and makes the same
 * update as 2 ranks × 1, and a run resumed at an iteration boundary equals the uninterrupted one.
 */
class PpoRecipeTest {
  @TempDir static Path tmp;
  static Path model;
  static Path data;
  static Path rm;

  @BeforeAll
  static void setUp() throws Exception {
    model = TinyRun.writeModel(tmp.resolve("model"), TinyRun.tinyConfig(), 11);
    data = PairDatasets.write(tmp.resolve("pairs"), 9, 64, 16);
    Path rmOut = tmp.resolve("rm");
    Ranks.run(
        1,
        TinyRun.config(
            model,
            data,
            rmOut,
            "stage=rm",
            "learning_rate=1e-2",
            "per_device_train_batch_size=2",
            "gradient_accumulation_steps=2",
            "max_steps=40"));
    rm = rmOut.resolve("rm_lora_model");
  }

  static TrainConfig cfg(Path out, String... extra) {
    List<String> o =
        new ArrayList<>(
            List.of(
                "stage=ppo",
                "reward_model=" + rm,
                "learning_rate=1e-2",
                "lr_scheduler_type=constant",
                "lora_dropout=0.0",
                "max_new_tokens=6",
                "ppo_epochs=2",
                "ppo_mini_batches=2",
                "per_device_train_batch_size=4",
                "init_kl_coef=0.05",
                "logging_steps=4"));
    o.addAll(List.of(extra));
    return TinyRun.config(model, data, out, o.toArray(String[]::new));
  }

  /** Every value of {@code name} in the log, in order. */
  static List<Double> values(String log, String name) {
    Matcher m = Pattern.compile(Pattern.quote(name) + " (-?[0-9.]+)").matcher(log);
    List<Double> out = new ArrayList<>();
    while (m.find()) {
      out.add(Double.parseDouble(m.group(1)));
    }
    return out;
  }

  /** The "ppo iteration i: objective/..." lines: each iteration's rollout statistics. */
  static List<String> rolloutLines(String log) {
    List<String> out = new ArrayList<>();
    for (String l : log.split("\n")) {
      if (l.contains("objective/scores")) {
        out.add(l.replaceAll("rank 0 sampled [0-9]+ tokens", ""));
      }
    }
    return out;
  }

  @Test
  void meanRewardRisesAndStatisticsAreLogged() throws Exception {
    Path out = tmp.resolve("learn");
    String log = Ranks.run(1, cfg(out, "max_steps=12", "gradient_accumulation_steps=2"));
    System.out.print(log);
    List<Double> scores = values(log, "objective/scores");
    assertEquals(12, scores.size(), log);
    double firstThree = (scores.get(0) + scores.get(1) + scores.get(2)) / 3;
    double lastThree = (scores.get(9) + scores.get(10) + scores.get(11)) / 3;
    System.out.printf("mean reward: first 3 iterations %.4f, last 3 %.4f%n", firstThree, lastThree);
    assertTrue(lastThree > firstThree + 1.0, "mean reward " + scores + "\n" + log);
    List<Double> kl = values(log, "objective/kl");
    assertTrue(Math.abs(kl.get(0)) < 1e-9, "iteration 1 samples from the reference: KL " + kl);
    for (double k : kl) {
      assertTrue(k < 10, "KL stays bounded: " + kl);
    }
    for (String m : PpoObjective.METRICS) {
      assertTrue(log.contains(" " + m + " "), m + "\n" + log);
    }
    assertTrue(log.contains("objective/entropy"), log);
    assertTrue(Files.isRegularFile(out.resolve("ppo_lora_model/adapter_model.safetensors")));
    assertTrue(Files.isRegularFile(out.resolve("ppo_lora_model").resolve(ValueHead.FILE)));
  }

  @Test
  void oneRankEqualsTwoAndResumeEqualsUninterrupted() throws Exception {
    Path one = tmp.resolve("one");
    String logOne = Ranks.run(1, cfg(one, "max_steps=3", "gradient_accumulation_steps=2"));
    Path two = tmp.resolve("two");
    String logTwo = Ranks.run(2, cfg(two, "max_steps=3", "gradient_accumulation_steps=1"));
    // iteration 1's rollouts are drawn by the same keyed sampler from the same weights, scored in
    // the same micro-batches and summed in the same order: its statistics are the same digits
    List<String> a = rolloutLines(logOne);
    List<String> b = rolloutLines(logTwo);
    assertEquals(3, a.size(), logOne);
    assertEquals(a.get(0), b.get(0), "iteration 1 on 1 rank vs 2 ranks");
    for (String f : List.of("adapter_model.safetensors", ValueHead.FILE)) {
      Map<String, float[]> x = Ranks.tensors(one.resolve("ppo_lora_model").resolve(f));
      Map<String, float[]> y = Ranks.tensors(two.resolve("ppo_lora_model").resolve(f));
      double err = Ranks.relError(y, x);
      System.out.printf("%s: 1 rank vs 2 ranks, relative error %.3g%n", f, err);
      // gradients reduce-scattered in another order (as in DpoRecipeTest), over 12 Adam steps
      assertTrue(err <= 1e-5, f + ": 1 rank x 2 micro-batches vs 2 ranks x 1: " + err);
    }

    // 4 steps per iteration: checkpoint after iteration 1 (step 4), crash inside iteration 2
    Path resumed = tmp.resolve("resumed");
    ProgressListener crash =
        (step, max, loss, tps, eta, secs) -> {
          if (step == 6) {
            throw new IllegalStateException("simulated crash at step 6");
          }
        };
    TrainConfig c = cfg(resumed, "max_steps=3", "gradient_accumulation_steps=1", "save_steps=2");
    Exception e = assertThrows(Exception.class, () -> Ranks.run(2, c, crash));
    assertTrue(e.getMessage().contains("simulated crash"), e.toString());
    assertTrue(
        Files.isRegularFile(resumed.resolve("checkpoint-4").resolve(PpoIterations.STATE_FILE)),
        "save_steps 2 falls inside an iteration; the checkpoint waits for its boundary");
    String log = Ranks.run(2, c);
    assertTrue(log.contains("at step 4"), log);
    List<String> r = rolloutLines(log);
    assertEquals(b.subList(1, 3), r, "iterations 2 and 3 after the resume");
    for (String f : List.of("adapter_model.safetensors", ValueHead.FILE)) {
      Map<String, float[]> x = Ranks.tensors(two.resolve("ppo_lora_model").resolve(f));
      Map<String, float[]> y = Ranks.tensors(resumed.resolve("ppo_lora_model").resolve(f));
      // resumed from the exact optimizer state and KL coefficient on the same world size: the
      // same operations in the same order
      assertEquals(0.0, Ranks.relError(y, x), 0.0, f + ": resumed vs uninterrupted");
    }
  }

  @Test
  void aRewardModelOfAnotherBaseIsRefused() throws Exception {
    Path other = TinyRun.writeModel(tmp.resolve("model48"), tinyConfig48(), 3);
    Path otherData = PairDatasets.write(tmp.resolve("pairs48"), 9, 8, 2);
    Path rmOut = tmp.resolve("rm48");
    Ranks.run(
        1,
        TinyRun.config(
            other,
            otherData,
            rmOut,
            "stage=rm",
            "modules_to_save=",
            "per_device_train_batch_size=2",
            "max_steps=1"));
    Exception e =
        assertThrows(
            Exception.class,
            () ->
                Ranks.run(
                    1,
                    cfg(
                        tmp.resolve("refused"),
                        "max_steps=1",
                        "reward_model=" + rmOut.resolve("rm_lora_model"))));
    assertTrue(e.getMessage().contains("not on model_name_or_path"), e.toString());
  }

  static dev.danlu.train.model.LlamaConfig tinyConfig48() {
    return new dev.danlu.train.model.LlamaConfig(
        16, 24, 2, 4, 2, 48, 1e-5, 10000.0, null, false, 64);
  }
}
