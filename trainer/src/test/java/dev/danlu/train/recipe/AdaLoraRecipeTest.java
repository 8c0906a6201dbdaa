package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.train.checkpoint.HfCheckpoint;
import dev.danlu.train.checkpoint.Merge;
import dev.danlu.train.checkpoint.SafeTensors;
import dev.danlu.train.config.ConfigException;
import dev.danlu.train.config.TrainConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * AdaLoRA through the real training loop (ZeRO-2, in-process ranks): 1, 2 and 3 ranks with the same
 * global batch end with the same adapter (relative error at float-summation level: the all-reduce
 * adds in another order) and the same rank pattern, pruned to target_r per module; a run killed
 * after a checkpoint and resumed (allocator state included) equals the uninterrupted one; the files
 * are PEFT's (peft_type ADALORA, rank_pattern, lora_A/B/E cut to the kept ranks, ranknum); merge
 * and export-gguf's MergedView folds B (A ⊙ E) alpha / (ranknum + 1e-5) into the weights; bad
 * configs and a LoRA checkpoint resumed as AdaLoRA fail before training.
 */
class AdaLoraRecipeTest {
  @TempDir static Path tmp;
  static Path model;
  static Path data;
  static Path twoRanks;
  static final ObjectMapper JSON = new ObjectMapper();

  static TrainConfig cfg(Path out, int accum, String... extra) {
    List<String> o =
        new ArrayList<>(
            List.of(
                "peft_type=ADALORA",
                "init_r=4",
                "target_r=2",
                "tinit=2",
                "tfinal=3",
                "deltaT=2",
                "total_step=12",
                "max_steps=12",
                "lora_alpha=8",
                "save_steps=4",
                "gradient_accumulation_steps=" + accum));
    o.addAll(List.of(extra));
    return TinyRun.config(model, data, out, o.toArray(String[]::new));
  }

  @BeforeAll
  static void setUp() throws Exception {
    model = TinyRun.writeModel(tmp.resolve("model"), TinyRun.tinyConfig(), 11);
    data = TinyRun.writeTinyDataset(tmp.resolve("data"), 80, 4);
    twoRanks = tmp.resolve("two");
    String log = Ranks.run(2, cfg(twoRanks, 3));
    assertTrue(log.contains("AdaLoRA: 56 singular triplets pruned to 28 by step 9"), log);
  }

  static Path adapter(Path out) {
    return out.resolve("pt_lora_model");
  }

  static JsonNode config(Path out) throws Exception {
    return JSON.readTree(adapter(out).resolve("adapter_config.json").toFile());
  }

  @Test
  void oneTwoAndThreeRanksGiveTheSameAdapterAndRankPattern() throws Exception {
    JsonNode two = config(twoRanks);
    assertEquals("ADALORA", two.get("peft_type").asText());
    JsonNode pattern = two.get("rank_pattern");
    assertEquals(14, pattern.size(), "7 targets x 2 layers");
    int kept = 0;
    for (JsonNode keep : pattern) {
      assertEquals(4, keep.size());
      for (JsonNode k : keep) {
        kept += k.asBoolean() ? 1 : 0;
      }
    }
    assertEquals(28, kept, "the final budget: target_r x modules");
    Map<String, float[]> ref =
        Ranks.tensors(adapter(twoRanks).resolve("adapter_model.safetensors"));
    assertNotNull(ref.get("base_model.model.model.layers.0.self_attn.q_proj.lora_E"));
    assertNotNull(ref.get("base_model.model.model.layers.0.self_attn.q_proj.ranknum"));
    for (int[] run : new int[][] {{1, 6}, {3, 2}}) {
      Path out = tmp.resolve("ranks-" + run[0]);
      Ranks.run(run[0], cfg(out, run[1]));
      assertEquals(pattern, config(out).get("rank_pattern"), run[0] + " ranks: rank pattern");
      double err =
          Ranks.relError(Ranks.tensors(adapter(out).resolve("adapter_model.safetensors")), ref);
      System.out.printf("AdaLoRA %d ranks vs 2 ranks: relative error %.3e%n", run[0], err);
      assertTrue(err <= 1e-5, "relative error " + err);
    }
  }

  @Test
  void killedAndResumedEqualsUninterrupted() throws Exception {
    Path out = tmp.resolve("resumed");
    ProgressListener crash =
        (step, max, loss, tps, eta, secs) -> {
          if (step == 7) {
            throw new IllegalStateException("simulated crash at step 7");
          }
        };
    assertThrows(Exception.class, () -> Ranks.run(2, cfg(out, 3), crash));
    String log = Ranks.run(2, cfg(out, 3));
    assertTrue(log.contains("at step 4 (written by 2 ranks, now 2)"), log);
    assertEquals(config(twoRanks).get("rank_pattern"), config(out).get("rank_pattern"));
    double err =
        Ranks.relError(
            Ranks.tensors(adapter(out).resolve("adapter_model.safetensors")),
            Ranks.tensors(adapter(twoRanks).resolve("adapter_model.safetensors")));
    System.out.printf("AdaLoRA resumed at step 4 vs uninterrupted: relative error %.3e%n", err);
    // the same ranks, the same reduction order: the resumed run repeats every operation
    assertEquals(0.0, err, "resume = uninterrupted");
  }

  @Test
  void mergeFoldsTheMaskedSvdForm() throws Exception {
    Path merged = tmp.resolve("merged");
    Merge.run(new Merge.Options(model, adapter(twoRanks), merged, null, 1L << 30, false));
    JsonNode cfg = config(twoRanks);
    double scale = 8 / ((float) 4 + 1e-5f);
    String module = "model.layers.1.mlp.down_proj";
    try (HfCheckpoint base = HfCheckpoint.open(model);
        HfCheckpoint out = HfCheckpoint.open(merged);
        SafeTensors ad = SafeTensors.open(adapter(twoRanks).resolve("adapter_model.safetensors"))) {
      String pre = "base_model.model." + module;
      float[] a = ad.readFloats(pre + ".lora_A");
      float[] b = ad.readFloats(pre + ".lora_B");
      float[] e = ad.readFloats(pre + ".lora_E");
      int rk = e.length;
      assertEquals(
          countTrue(cfg.get("rank_pattern").get(module + ".lora_E")), rk, "cut to kept ranks");
      float[] w = base.readFloats(module + ".weight");
      float[] m = out.readFloats(module + ".weight");
      long[] shape = base.info(module + ".weight").shape();
      int rows = (int) shape[0];
      int cols = (int) shape[1];
      double maxErr = 0;
      double maxDelta = 0;
      for (int o = 0; o < rows; o++) {
        for (int i = 0; i < cols; i++) {
          double d = 0;
          for (int k = 0; k < rk; k++) {
            d += (double) b[o * rk + k] * e[k] * a[k * cols + i];
          }
          d *= scale;
          maxDelta = Math.max(maxDelta, Math.abs(d));
          maxErr = Math.max(maxErr, Math.abs(w[o * cols + i] + d - m[o * cols + i]));
        }
      }
      System.out.printf(
          "merge of %s: max |delta| %.3e, max error %.3e%n", module, maxDelta, maxErr);
      assertTrue(maxDelta > 1e-4, "the adapter changed the weight");
      assertTrue(maxErr <= 1e-6 + 1e-6 * maxDelta, "merged = W + scaling B (A ⊙ E)");
      // export-gguf's streaming view folds the same way
      try (dev.danlu.train.checkpoint.MergedView view =
          dev.danlu.train.checkpoint.MergedView.open(model, adapter(twoRanks))) {
        float[] v = new float[rows * cols];
        view.readRows(module + ".weight", 0, rows, v);
        double viewErr = 0;
        for (int i = 0; i < v.length; i++) {
          viewErr = Math.max(viewErr, Math.abs(v[i] - m[i]));
        }
        assertTrue(viewErr <= 1e-6 * maxDelta + 1e-7, "MergedView vs merge: " + viewErr);
        assertEquals(14, view.loraMerged(), "all 14 targets folded");
      }
    }
  }

  private static int countTrue(JsonNode keep) {
    int n = 0;
    for (JsonNode k : keep) {
      n += k.asBoolean() ? 1 : 0;
    }
    return n;
  }

  @Test
  void badConfigsAndALoraCheckpointFailBeforeTraining() throws Exception {
    ConfigException e =
        assertThrows(ConfigException.class, () -> cfg(tmp.resolve("x"), 3, "target_r=5"));
    assertTrue(e.getMessage().contains("target_r (5) > init_r (4)"), e.getMessage());
    e = assertThrows(ConfigException.class, () -> cfg(tmp.resolve("x"), 3, "total_step=0"));
    assertTrue(e.getMessage().contains("total_step is not set"), e.getMessage());
    e = assertThrows(ConfigException.class, () -> cfg(tmp.resolve("x"), 3, "total_step=5"));
    assertTrue(e.getMessage().contains("must be larger than tinit + tfinal (5)"), e.getMessage());

    Path lora = tmp.resolve("lora-then-adalora");
    Ranks.run(2, TinyRun.config(model, data, lora, "max_steps=4", "save_steps=2"));
    Exception ex = assertThrows(Exception.class, () -> Ranks.run(2, cfg(lora, 3)));
    assertTrue(ex.getMessage().contains("lora.peft_type"), ex.getMessage());
    assertTrue(ex.getMessage().contains("LORA") && ex.getMessage().contains("ADALORA"));
  }
}
