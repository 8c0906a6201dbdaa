package dev.danlu.train.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.sft.SftShards;
import dev.danlu.jobs.prep.PrepSftCli;
import dev.danlu.testkit.Floats;
import dev.danlu.testkit.Prereq;
import dev.danlu.train.config.ConfigLoader;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.data.SftBatches;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.RandomInit;
import dev.danlu.train.recipe.Evaluator;
import dev.danlu.train.recipe.RecipeTestSupport;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentSkipListMap;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 12's training acceptance, end to end: instruction records → {@code prep-sft} on Spark
 * local[2] → {@code stage: sft} on the shared loop. The same global batch on 1, 2 and 3 ranks gives
 * the same adapter (relative error ≤ 1e-6, as pretraining: gradients are summed in another order),
 * a run crashed on 2 ranks resumes on 3 to the uninterrupted result, and the loss falls.
 */
class SftPipelineTest {
  @TempDir static Path tmp;
  static Path model;
  static Path data;
  static final String[] COLORS = {"red", "blue", "green", "yellow", "brown"};
  static final String[] ANIMALS = {"cat", "dog", "bird", "fish", "frog"};

  @BeforeAll
  static void prepare() throws Exception {
    Path tok = Prereq.shared("fixtures/stories260K/tokenizer.model");
    model = tmp.resolve("model");
    RandomInit.writeHfDir(
        model, new LlamaConfig(32, 64, 2, 4, 2, 512, 1e-5, 10000.0, null, false, 256), 7, tok);
    // records whose answer is a function of the input: something a tiny model can learn
    SplittableRandom r = new SplittableRandom(3);
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < 80; i++) {
      int a = r.nextInt(ANIMALS.length);
      lines.add(
          "{\"instruction\": \"What color is the "
              + ANIMALS[a]
              + "?\", \"input\": \"\", \"output\": \"The "
              + ANIMALS[a]
              + " is "
              + COLORS[a]
              + ".\"}");
    }
    Path input = tmp.resolve("records.jsonl");
    Files.write(input, lines, StandardCharsets.UTF_8);
    data = tmp.resolve("sft-shards");
    int rc =
        PrepSftCli.run(
            new String[] {
              "--input",
              input.toString(),
              "--tokenizer",
              tok.toString(),
              "--max-seq-length",
              "256",
              "--output",
              data.toString(),
              "--master",
              "local[2]",
              "--validation-fraction",
              "0.1"
            });
    assertEquals(0, rc);
    assertTrue(SftShards.maxSeqLength(data) == 256);
  }

  static TrainConfig cfg(Path out, String... extra) throws Exception {
    List<String> o = new ArrayList<>();
    o.add("output_dir=" + out);
    o.addAll(List.of(extra));
    String yaml =
        String.join(
            "\n",
            "stage: sft",
            "model_name_or_path: " + model,
            "dataset_dir: " + data,
            "seed: 5",
            "max_steps: 8",
            "per_device_train_batch_size: 1",
            "learning_rate: 5.0e-3",
            "lora_rank: 4",
            "lora_alpha: 8",
            "lora_dropout: 0.1",
            "modules_to_save: embed_tokens,lm_head",
            "logging_steps: 1",
            "save_steps: 2",
            "eval_steps: 8",
            "");
    return ConfigLoader.load(yaml, "sft-test.yaml", o).config();
  }

  static Map<String, float[]> adapter(Path out) {
    return RecipeTestSupport.tensors(out.resolve("sft_lora_model/adapter_model.safetensors"));
  }

  @Test
  void oneTwoThreeRanksGiveOneAdapterAndACrashResumesOnAnotherWorldSize() throws Exception {
    Map<Long, Double> losses = new ConcurrentSkipListMap<>();
    Path one = tmp.resolve("one");
    String log =
        RecipeTestSupport.train(
            1, cfg(one, "gradient_accumulation_steps=6"), (s, m, l, t, e, x) -> losses.put(s, l));
    assertTrue(log.contains("eval step 8: eval_loss"), log);
    assertTrue(log.contains("padded per micro-batch to its longest"), log);
    List<Double> l = List.copyOf(losses.values());
    assertEquals(8, l.size());
    System.out.printf("SFT loss %.4f -> %.4f%n", l.get(0), l.get(7));
    assertTrue(l.get(7) < l.get(0), "loss did not fall: " + l);
    Map<String, float[]> reference = adapter(one);
    for (int n : new int[] {2, 3}) {
      Path out = tmp.resolve("ranks-" + n);
      RecipeTestSupport.train(n, cfg(out, "gradient_accumulation_steps=" + 6 / n), null);
      double err = Floats.relError(adapter(out), reference);
      System.out.printf("SFT %d ranks vs 1: relative error %.3e%n", n, err);
      assertTrue(err <= 1e-6, n + " ranks: relative error " + err);
    }

    // crash on 2 ranks after checkpoint-4, resume on 3 (global batch kept: 2 x 3 = 3 x 2)
    Path crashed = tmp.resolve("crashed");
    Exception e =
        assertThrows(
            Exception.class,
            () ->
                RecipeTestSupport.train(
                    2,
                    cfg(crashed, "gradient_accumulation_steps=3"),
                    (s, m, loss, t, eta, x) -> {
                      if (s == 5) {
                        throw new IllegalStateException("simulated crash at step 5");
                      }
                    }));
    assertTrue(e.getMessage().contains("simulated crash"), e.toString());
    String resumed =
        RecipeTestSupport.train(3, cfg(crashed, "gradient_accumulation_steps=2"), null);
    assertTrue(resumed.contains("at step 4 (written by 2 ranks, now 3)"), resumed);
    double err = Floats.relError(adapter(crashed), reference);
    System.out.printf("SFT crash on 2 ranks, resume on 3 vs uninterrupted: %.3e%n", err);
    assertTrue(err <= 1e-6, "relative error " + err);
  }

  /** Mean token loss of a fresh adapter over {@code split}, and the rows it took. */
  record Scored(double loss, long tokens, long rows) {}

  static Scored meanLoss(String split, boolean packing) throws Exception {
    TrainConfig c = cfg(tmp.resolve("unused"));
    dev.danlu.data.sft.SftManifest m = dev.danlu.data.sft.SftManifest.readCurrent(data);
    dev.danlu.train.recipe.ModelSetup model =
        dev.danlu.train.recipe.ModelSetup.load(c, m.params().vocabSize());
    // the split under test stands in as the "validation" split, which the Evaluator scores
    try (SftBatches batches =
        new SftBatches(
            dev.danlu.data.sft.SftShards.open(data, m, "validation", null),
            dev.danlu.data.sft.SftShards.open(data, m, split, null),
            m.params().padId(),
            m.params().maxSeqLength(),
            64,
            packing,
            m.version(),
            "x")) {
      Evaluator.Result r =
          new Evaluator(
                  model,
                  batches,
                  dev.danlu.train.recipe.Objective.CAUSAL_LM,
                  4,
                  dev.danlu.train.comm.LocalCommunicator.group(1).get(0))
              .run();
      System.out.printf(
          "%s split, packing %s: %s (%d rows), mean loss %.7f over %d tokens%n",
          split, packing, batches.describe(), batches.validationRows(), r.loss(), r.tokens());
      return new Scored(r.loss(), r.tokens(), batches.validationRows());
    }
  }

  @Test
  void packingScoresTheSameExamplesAlikeAndTrainsAlikeOnOneAndTwoRanks() throws Exception {
    // the same examples packed or one per row: the same token-weighted loss. Not bitwise: packed
    // rows run the products over other shapes (docs/distributed.md); float32 sums of ≤ 128 terms
    // per product, reordered, move the loss by ~1e-6 relative, far inside 1e-5.
    for (String split : new String[] {"train", "validation"}) {
      Scored plain = meanLoss(split, false);
      Scored packed = meanLoss(split, true);
      assertEquals(plain.tokens(), packed.tokens(), split + ": the same label tokens");
      assertTrue(packed.rows() < plain.rows(), split + ": " + packed.rows() + " packed rows");
      assertTrue(
          Math.abs(packed.loss() - plain.loss()) <= 1e-5 * plain.loss(),
          split + ": " + packed + " vs " + plain);
    }
    Path one = tmp.resolve("packed-1");
    String log =
        RecipeTestSupport.train(
            1, cfg(one, "packing=true", "max_steps=4", "gradient_accumulation_steps=2"), null);
    assertTrue(log.contains("packed into"), log);
    Path two = tmp.resolve("packed-2");
    RecipeTestSupport.train(
        2, cfg(two, "packing=true", "max_steps=4", "gradient_accumulation_steps=1"), null);
    double err = Floats.relError(adapter(two), adapter(one));
    System.out.printf("SFT packed, 2 ranks vs 1: relative error %.3e%n", err);
    assertTrue(err <= 1e-6, "relative error " + err);
  }

  @Test
  void peftPathContinuesThePretrainingAdapterShape() throws Exception {
    // continue an SFT adapter as run_sft.sh continues the pretraining one
    Path first = tmp.resolve("first");
    RecipeTestSupport.train(1, cfg(first, "max_steps=2", "gradient_accumulation_steps=1"), null);
    Path next = tmp.resolve("next");
    String log =
        RecipeTestSupport.train(
            1,
            cfg(
                next,
                "max_steps=2",
                "gradient_accumulation_steps=1",
                "peft_path=" + first.resolve("sft_lora_model"),
                "lora_rank=16"),
            null);
    assertTrue(log.contains("final adapter written"), log);
    assertEquals(
        RecipeTestSupport.tensors(first.resolve("sft_lora_model/adapter_model.safetensors"))
            .keySet(),
        adapter(next).keySet(),
        "the continued adapter keeps its shape, not lora_rank=16");
    assertEquals(
        4 * 32,
        adapter(next).get("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").length);
  }

  @org.junit.jupiter.api.AfterEach
  void noWorkerSurvives() {
    ProcessHandle.current()
        .descendants()
        .filter(TrainLocalKillTest::isWorker)
        .forEach(ProcessHandle::destroyForcibly);
  }

  @Test
  void trainLocalWorkerKilledThenResumedOnThreeProcesses() throws Exception {
    Path out = tmp.resolve("killed");
    Path yaml = tmp.resolve("sft.yaml");
    Files.writeString(
        yaml,
        String.join(
            "\n",
            "stage: sft",
            "model_name_or_path: " + model,
            "dataset_dir: " + data,
            "output_dir: " + out,
            "seed: 5",
            "max_steps: 8",
            "per_device_train_batch_size: 1",
            "learning_rate: 5.0e-3",
            "lora_rank: 4",
            "lora_alpha: 8",
            "lora_dropout: 0.1",
            "modules_to_save: embed_tokens,lm_head",
            "logging_steps: 1",
            "save_steps: 2",
            "eval_steps: 8",
            ""));
    // the uninterrupted reference: the same global batch of 6 on one in-process rank
    Path ref = tmp.resolve("kill-reference");
    RecipeTestSupport.train(1, cfg(ref, "gradient_accumulation_steps=6"), null);
    Map<String, float[]> reference = adapter(ref);
    java.io.ByteArrayOutputStream log = new java.io.ByteArrayOutputStream();
    java.io.PrintStream ps = new java.io.PrintStream(log, true, StandardCharsets.UTF_8);
    java.util.concurrent.atomic.AtomicInteger rc =
        new java.util.concurrent.atomic.AtomicInteger(-1);
    Thread run =
        new Thread(
            () ->
                rc.set(
                    TrainLocalCli.run(
                        new String[] {
                          "--config",
                          yaml.toString(),
                          "--nproc",
                          "2",
                          "gradient_accumulation_steps=3"
                        },
                        Map.of("DANLU_STEP_DELAY_MS", "400"),
                        ps)));
    run.start();
    Path ckpt = dev.danlu.train.checkpoint.TrainingCheckpoint.dirFor(out, 2);
    long deadline = System.nanoTime() + 120_000_000_000L;
    while (!dev.danlu.train.checkpoint.TrainingCheckpoint.isCommitted(ckpt)
        && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertTrue(
        dev.danlu.train.checkpoint.TrainingCheckpoint.isCommitted(ckpt),
        "no committed checkpoint-2:\n" + log);
    ProcessHandle victim =
        ProcessHandle.current()
            .descendants()
            .filter(TrainLocalKillTest::isWorker)
            .findFirst()
            .orElseThrow(() -> new AssertionError("no worker to kill:\n" + log));
    victim.destroyForcibly(); // SIGKILL
    run.join(60_000);
    assertEquals(137, rc.get(), log.toString(StandardCharsets.UTF_8));

    // resumed by 3 processes (global batch kept: 3 x 2 = 2 x 3)
    java.io.ByteArrayOutputStream log3 = new java.io.ByteArrayOutputStream();
    int rc3 =
        TrainLocalCli.run(
            new String[] {
              "--config", yaml.toString(), "--nproc", "3", "gradient_accumulation_steps=2"
            },
            Map.of(),
            new java.io.PrintStream(log3, true, StandardCharsets.UTF_8));
    String third = log3.toString(StandardCharsets.UTF_8);
    assertEquals(0, rc3, third);
    assertTrue(third.contains("(written by 2 ranks, now 3)"), third);
    double err = Floats.relError(adapter(out), reference);
    System.out.printf("SFT train-local kill -9, resume on 3 processes: relative error %.3e%n", err);
    assertTrue(err <= 1e-6, "relative error " + err + "\n" + third);
  }
}
