package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.config.ConfigException;
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
 * The recipe seam: a recipe added in this test tree alone ({@link SftExampleRecipe}, prompt-masked
 * instruction examples) is found by its {@code stage}, trains through the one loop with everything
 * the loop owns — data-parallel ranks, accumulation, checkpoints, eval — and learns.
 */
class RecipeSeamTest {
  @TempDir static Path tmp;
  static Path model;

  @BeforeAll
  static void setUp() throws Exception {
    model = TinyRun.writeModel(tmp.resolve("model"), TinyRun.tinyConfig(), 11);
  }

  private static TrainConfig cfg(Path out, String... extra) {
    List<String> o = new ArrayList<>(List.of("stage=sft-example", "eval_steps=10"));
    o.addAll(List.of(extra));
    // dataset_dir is the pretraining recipe's key; the example recipe keeps its data in memory
    return TinyRun.config(model, tmp.resolve("unused"), out, o.toArray(String[]::new));
  }

  @Test
  void stageSelectsTheRecipeAndAnUnknownOneIsNamed() {
    assertInstanceOf(PretrainRecipe.class, Recipes.forConfig(TinyRun.config(model, tmp, tmp)));
    assertInstanceOf(SftExampleRecipe.class, Recipes.forConfig(cfg(tmp)));
    ConfigException e =
        assertThrows(
            ConfigException.class,
            () -> Recipes.forConfig(TinyRun.config(model, tmp, tmp, "stage=dpo-nope")));
    assertTrue(e.getMessage().startsWith("stage: 'dpo-nope' is not a recipe"), e.getMessage());
    assertTrue(e.getMessage().contains("[dpo, ppo, pt, rm, sft, sft-example]"), e.getMessage());
  }

  @Test
  void aRecipeOutsideTheGenericClassesTrainsDataParallelAndLearns() throws Exception {
    Path one = tmp.resolve("one");
    Map<Long, Double> byStep = new java.util.concurrent.ConcurrentSkipListMap<>();
    String log =
        Ranks.run(
            1,
            cfg(one, "max_steps=30", "gradient_accumulation_steps=2"),
            (step, max, loss, tps, eta, secs) -> byStep.put(step, loss));
    List<Double> losses = List.copyOf(byStep.values());
    assertEquals(30, losses.size(), log);
    double first = (losses.get(0) + losses.get(1)) / 2;
    double last = (losses.get(28) + losses.get(29)) / 2;
    assertTrue(last < 0.8 * first, "loss " + first + " -> " + last + "\n" + log);
    assertTrue(log.contains("eval step 30: eval_loss"), log);
    assertTrue(Files.isRegularFile(one.resolve("sft_lora_model/adapter_model.safetensors")));
    assertTrue(Files.isDirectory(one.resolve("checkpoint-30")), "the loop's checkpoints");

    // the same global batch on 2 ranks: the loop's equivalence holds for the new recipe too
    // (relative error bound as in ZeroEquivalenceTest: gradients summed in another order)
    Path two = tmp.resolve("two");
    Ranks.run(2, cfg(two, "max_steps=30", "gradient_accumulation_steps=1"));
    Map<String, float[]> a = Ranks.tensors(one.resolve("sft_lora_model/adapter_model.safetensors"));
    Map<String, float[]> b = Ranks.tensors(two.resolve("sft_lora_model/adapter_model.safetensors"));
    double err = Ranks.relError(b, a);
    assertTrue(err <= 1e-6, "1 rank x 2 micro-batches vs 2 ranks x 1: relative error " + err);
  }

  @Test
  void microBatchesWithoutLabelTokensAreSkippedNotNaN() throws Exception {
    // max_seq_length 5 cuts every example whose prompt has 5+ tokens down to its prompt alone:
    // those micro-batches have no label token (the reference's loss would be NaN there)
    Path out = tmp.resolve("cut");
    Map<Long, Double> byStep = new java.util.concurrent.ConcurrentSkipListMap<>();
    String log =
        Ranks.run(
            2,
            cfg(out, "max_steps=6", "gradient_accumulation_steps=2", "max_seq_length=5"),
            (step, max, loss, tps, eta, secs) -> byStep.put(step, loss));
    assertTrue(log.contains("micro-batches had no label token and were skipped"), log);
    assertEquals(6, byStep.size(), log);
    int finite = 0;
    for (Map.Entry<Long, Double> e : byStep.entrySet()) {
      if (Double.isFinite(e.getValue())) {
        finite++;
      } else {
        // NaN only where no rank had any label token in the whole step, and then it says so
        assertTrue(
            log.contains("step " + e.getKey() + ": no micro-batch on any rank had a label token"),
            "step " + e.getKey() + " loss " + e.getValue() + "\n" + log);
      }
    }
    assertTrue(finite >= 3, finite + " of 6 steps had a loss\n" + log);
    for (float[] t :
        Ranks.tensors(out.resolve("sft_lora_model/adapter_model.safetensors")).values()) {
      for (float v : t) {
        assertTrue(Float.isFinite(v), "a non-finite adapter weight");
      }
    }
  }

  @Test
  void peftPathContinuesAnAdapterWithItsOwnShape() throws Exception {
    Path first = tmp.resolve("first");
    Ranks.run(1, cfg(first, "max_steps=3", "lora_rank=4"));
    Path adapter = first.resolve("sft_lora_model");
    // run_sft.sh's --peft_path: the adapter's own rank wins over lora_rank
    TrainConfig cont = cfg(tmp.resolve("cont"), "peft_path=" + adapter, "lora_rank=2");
    ModelSetup m = ModelSetup.load(cont, 40);
    assertEquals(4, m.adapter().config.rank());
    Map<String, float[]> saved = Ranks.tensors(adapter.resolve("adapter_model.safetensors"));
    Map<String, float[]> loaded = new java.util.HashMap<>();
    dev.danlu.train.lora.PeftBridge.toPeft(m.adapter(), "x")
        .tensors()
        .forEach((k, v) -> loaded.put(k, v.data()));
    assertEquals(saved.keySet(), loaded.keySet());
    for (String k : saved.keySet()) {
      // bitwise: read back as written, no arithmetic
      org.junit.jupiter.api.Assertions.assertArrayEquals(saved.get(k), loaded.get(k), k);
    }
    // and training continues from it
    String log =
        Ranks.run(
            1,
            TinyRun.config(
                model,
                tmp,
                tmp.resolve("cont"),
                "stage=sft-example",
                "max_steps=2",
                "peft_path=" + adapter));
    assertTrue(log.contains("final adapter written"), log);
  }

  @Test
  void groupByLengthKeepsOneRankEqualToTwo() throws Exception {
    Path one = tmp.resolve("grouped-one");
    Path two = tmp.resolve("grouped-two");
    Ranks.run(1, cfg(one, "max_steps=6", "gradient_accumulation_steps=2", "group_by_length=true"));
    Ranks.run(2, cfg(two, "max_steps=6", "gradient_accumulation_steps=1", "group_by_length=true"));
    double err =
        Ranks.relError(
            Ranks.tensors(two.resolve("sft_lora_model/adapter_model.safetensors")),
            Ranks.tensors(one.resolve("sft_lora_model/adapter_model.safetensors")));
    assertTrue(err <= 1e-6, "group_by_length, 1 rank x 2 vs 2 ranks x 1: relative error " + err);
  }
}
