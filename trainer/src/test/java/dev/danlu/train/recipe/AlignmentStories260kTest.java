package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.data.sft.PairRecord;
import dev.danlu.data.sft.SftExampleBuilder;
import dev.danlu.data.sft.SftExamples;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.testkit.Prereq;
import dev.danlu.train.cli.ScoreCli;
import dev.danlu.train.config.TrainConfig;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The end-to-end check on the real stories260K model (skipped without {@code ../shared}): a
 * synthetic but real preference — the chosen story ends "was very happy", the rejected one another
 * feeling, the rest equal (scripts/synthetic-pairs.py's rule) — prepared as prep-pairs prepares it
 * (Alpaca-2 prompt, the real tokenizer). The reward model must separate held-out pairs scored by
 * {@code danlu score}, and DPO must raise the chosen-minus-rejected margin over the reference on
 * held-out pairs. Train, validation and scored pairs come from different seeds.
 */
class AlignmentStories260kTest {
  static final String[] NAMES = {"Lily", "Tom", "Ben", "Sue", "Max", "Mia", "Sam", "Anna"};
  static final String[] THINGS = {"ball", "dog", "cat", "box", "tree", "car", "cake", "bird"};
  static final String[] ADJS = {"big", "red", "little", "blue", "soft", "shiny"};
  static final String[] OTHER = {"sad", "tired", "angry", "scared", "bored", "sleepy"};

  @TempDir static Path tmp;
  static Path model;
  static Path data;
  static Path heldOut;

  static List<PairRecord> records(long seed, int n) {
    SplittableRandom r = new SplittableRandom(seed);
    List<PairRecord> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      String name = NAMES[r.nextInt(NAMES.length)];
      String thing = THINGS[r.nextInt(THINGS.length)];
      String story =
          String.format(
              "%s had a %s %s. %s played with the %s all day. %s was very ",
              name, ADJS[r.nextInt(ADJS.length)], thing, name, thing, name);
      out.add(
          new PairRecord(
              "Tell a short story about " + name + " and a " + thing + ".",
              "",
              story + "happy.",
              story + OTHER[r.nextInt(OTHER.length)] + "."));
    }
    return out;
  }

  @BeforeAll
  static void setUp() throws Exception {
    model = Prereq.shared("fixtures/stories260K");
    Path tokFile = model.resolve("tokenizer.model");
    try (TextTokenizer tok = TextTokenizer.load(tokFile)) {
      SftExampleBuilder b = new SftExampleBuilder(tok, 256);
      data =
          PairDatasets.write(
              tmp.resolve("pairs"),
              build(b, records(1, 96)),
              build(b, records(2, 24)),
              tok.vocabSize(),
              0,
              256,
              ModelSetup.sha256(tokFile));
    }
    heldOut = tmp.resolve("held-out.jsonl");
    ObjectMapper json = new ObjectMapper();
    StringBuilder sb = new StringBuilder();
    for (PairRecord p : records(3, 40)) {
      sb.append(json.writeValueAsString(p)).append('\n');
    }
    Files.writeString(heldOut, sb.toString());
  }

  static List<SftExamples.Example[]> build(SftExampleBuilder b, List<PairRecord> recs) {
    List<SftExamples.Example[]> out = new ArrayList<>();
    for (PairRecord p : recs) {
      out.add(
          new SftExamples.Example[] {
            b.build(p.as(p.chosen())).example(), b.build(p.as(p.rejected())).example()
          });
    }
    return out;
  }

  static TrainConfig cfg(Path out, String... extra) {
    List<String> o =
        new ArrayList<>(
            List.of(
                "tokenizer_name_or_path=" + model.resolve("tokenizer.model"),
                "max_steps=20",
                "per_device_train_batch_size=4",
                "per_device_eval_batch_size=8",
                "gradient_accumulation_steps=1",
                "lora_rank=8",
                "lora_alpha=16",
                "lora_dropout=0.05",
                "warmup_ratio=0.1",
                "logging_steps=10",
                "eval_steps=20"));
    o.addAll(List.of(extra));
    return TinyRun.config(model, data, out, o.toArray(String[]::new));
  }

  @Test
  void rewardModelSeparatesHeldOutPairs() throws Exception {
    Path out = tmp.resolve("rm");
    String log = Ranks.run(1, cfg(out, "stage=rm", "learning_rate=2e-3"));
    System.out.print(log);
    Path scores = tmp.resolve("scores.json");
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    ByteArrayOutputStream e = new ByteArrayOutputStream();
    int code =
        ScoreCli.run(
            new String[] {
              "--model", model.toString(),
              "--adapter", out.resolve("rm_lora_model").toString(),
              "--pairs", heldOut.toString(),
              "--output", scores.toString(),
              "--max-seq-length", "256"
            },
            new PrintStream(o, true, StandardCharsets.UTF_8),
            new PrintStream(e, true, StandardCharsets.UTF_8));
    assertEquals(0, code, e.toString(StandardCharsets.UTF_8));
    System.out.print(o.toString(StandardCharsets.UTF_8));
    JsonNode s = new ObjectMapper().readTree(scores.toFile());
    assertEquals(40, s.get("count").asInt());
    assertEquals(40, s.get("pairs").size());
    double accuracy = s.get("accuracy").asDouble();
    System.out.println("stories260K reward model, held-out accuracy " + accuracy);
    assertTrue(accuracy >= 0.9, "held-out accuracy " + accuracy);
  }

  @Test
  void scoreStopsAtABadPairNamingFileAndLine() throws Exception {
    // an untrained reward model is enough to reach the records
    Path rm = tmp.resolve("fresh-rm");
    var w = dev.danlu.train.model.HfLlama.load(model, org.nd4j.linalg.api.buffer.DataType.FLOAT);
    var ad =
        dev.danlu.train.lora.LoraAdapter.init(
            new dev.danlu.train.lora.LoraConfig(
                4, 8, 0.0, dev.danlu.train.lora.LoraConfig.allTargets(), false, false, 1),
            w);
    dev.danlu.train.lora.PeftBridge.toPeft(ad, model.toString()).save(rm);
    ValueHead.init(w.config().hiddenSize(), 1).save(rm);
    Path bad = tmp.resolve("bad.jsonl");
    Files.writeString(
        bad,
        "{\"instruction\":\"a\",\"chosen\":\"x\",\"rejected\":\"y\"}\n"
            + "{\"instruction\":\"b\",\"chosen\":\"same\",\"rejected\":\"same\"}\n");
    ByteArrayOutputStream e = new ByteArrayOutputStream();
    int code =
        ScoreCli.run(
            new String[] {
              "--model", model.toString(), "--adapter", rm.toString(), "--pairs", bad.toString()
            },
            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
            new PrintStream(e, true, StandardCharsets.UTF_8));
    String err = e.toString(StandardCharsets.UTF_8);
    assertEquals(1, code, err);
    assertTrue(err.contains("bad.jsonl: line 2: chosen and rejected are identical"), err);
  }

  /**
   * PPO against a reward model trained on the preference: the mean reward of the continuations the
   * policy samples for the training prompts rises, while the KL to the reference stays bounded.
   */
  @Test
  void ppoRaisesTheMeanRewardOfSampledContinuations() throws Exception {
    Path rm = tmp.resolve("rm-for-ppo");
    Ranks.run(1, cfg(rm, "stage=rm", "learning_rate=2e-3", "eval_steps=0"));
    String log =
        Ranks.run(
            1,
            cfg(
                tmp.resolve("ppo"),
                "stage=ppo",
                "reward_model=" + rm.resolve("rm_lora_model"),
                "max_steps=" + PPO_ITERATIONS,
                "per_device_train_batch_size=8",
                "ppo_epochs=4",
                "ppo_mini_batches=2",
                "max_new_tokens=" + PPO_NEW_TOKENS,
                "init_kl_coef=0.05",
                "learning_rate=5e-3",
                "lr_scheduler_type=constant",
                "warmup_ratio=0",
                "lora_dropout=0",
                "modules_to_save=",
                "eval_steps=0",
                "logging_steps=4"));
    System.out.print(log);
    List<Double> scores = PpoRecipeTest.values(log, "objective/scores");
    List<Double> kl = PpoRecipeTest.values(log, "objective/kl");
    assertEquals(PPO_ITERATIONS, scores.size(), log);
    double first = mean(scores.subList(0, 3));
    double last = mean(scores.subList(PPO_ITERATIONS - 3, PPO_ITERATIONS));
    System.out.println(
        "stories260K PPO, mean reward first 3 iterations "
            + first
            + ", last 3 "
            + last
            + "; KL "
            + kl);
    assertTrue(last > first + PPO_MIN_GAIN, "mean reward per iteration " + scores);
    for (double k : kl) {
      assertTrue(k < PPO_MAX_KL, "KL to the reference per iteration " + kl);
    }
  }

  static final int PPO_ITERATIONS = 12;
  static final int PPO_NEW_TOKENS = 4;
  // measured (load 7): mean reward 1.07 over the first 3 iterations, 4.19 over the last 3; KL at
  // most 16.1 nats per 4-token continuation on Zen kernels, 32.6 (last iteration) under
  // OPENBLAS_CORETYPE=SkylakeX: the rollouts are sampled, and a last-bit difference in the logits
  // of another BLAS kernel draws another token where a keyed uniform falls near a CDF boundary,
  // so each machine follows its own trajectory. The bound is about twice the worst seen.
  static final double PPO_MIN_GAIN = 1.5;
  static final double PPO_MAX_KL = 60;

  static SftExamples.Example queryUpTo(SftExamples.Example e, int n) {
    int[] labels = e.labels().clone();
    java.util.Arrays.fill(labels, 0, n, SftExamples.IGNORE_INDEX);
    return new SftExamples.Example(e.inputIds(), labels);
  }

  static double mean(List<Double> x) {
    return x.stream().mapToDouble(Double::doubleValue).average().orElse(Double.NaN);
  }

  @Test
  void dpoRaisesTheHeldOutMargin() throws Exception {
    String log = Ranks.run(1, cfg(tmp.resolve("dpo"), "stage=dpo", "learning_rate=1e-3"));
    System.out.print(log);
    // eval_rewards/margins = β((log π(c) − log π(r)) − (log π_ref(c) − log π_ref(r))) on the
    // validation pairs: how much the chosen-minus-rejected log-prob margin rose
    double margin = DpoRecipeTest.metric(log, "eval_rewards/margins");
    double accuracy = DpoRecipeTest.metric(log, "eval_rewards/accuracies");
    System.out.println("stories260K DPO, held-out margin gain " + margin + " accuracy " + accuracy);
    assertTrue(margin > 0.2, "held-out margin gain " + margin);
    assertTrue(accuracy >= 0.9, "held-out accuracy " + accuracy);
  }
}
