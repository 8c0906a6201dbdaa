package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.checkpoint.TrainerState;
import dev.danlu.train.checkpoint.TrainingCheckpoint;
import dev.danlu.train.config.TrainConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Training checkpoints in process: a run that crashes after a committed checkpoint and resumes (on
 * 2 or on 3 ranks, same global batch) ends with the uninterrupted run's weights; an interrupted
 * save is ignored and deleted; retention keeps the newest save_total_limit; a checkpoint of another
 * model, LoRA rank, dataset or global batch is refused naming directory, field and both values.
 */
class CheckpointResumeTest {
  @TempDir static Path tmp;
  static Path model;
  static Path data;
  static Map<String, float[]> uninterrupted;

  @BeforeAll
  static void setUp() throws Exception {
    model = TinyRun.writeModel(tmp.resolve("model"), TinyRun.tinyConfig(), 11);
    data = TinyRun.writeTinyDataset(tmp.resolve("data"), 60, 4);
    Path out = tmp.resolve("uninterrupted");
    Ranks.run(2, cfg(out, 3));
    uninterrupted = Ranks.tensors(out.resolve("pt_lora_model/adapter_model.safetensors"));
    assertEquals(List.of(6L, 8L), steps(out), "save_total_limit 2 keeps the newest two");
  }

  static TrainConfig cfg(Path out, int accum, String... extra) {
    String[] all = new String[extra.length + 3];
    all[0] = "gradient_accumulation_steps=" + accum;
    all[1] = "max_steps=8";
    all[2] = "save_steps=3";
    System.arraycopy(extra, 0, all, 3, extra.length);
    return TinyRun.config(model, data, out, all);
  }

  static List<Long> steps(Path out) throws Exception {
    return TrainingCheckpoint.list(out).stream().map(TrainingCheckpoint::stepOf).toList();
  }

  /** Runs until step 5 completes, then every rank fails (a crash after checkpoint-3 committed). */
  static void crashAfterStep5(Path out) {
    ProgressListener crash =
        (step, max, loss, tps, eta, secs) -> {
          if (step == 5) {
            throw new IllegalStateException("simulated crash at step 5");
          }
        };
    Exception e = assertThrows(Exception.class, () -> Ranks.run(2, cfg(out, 3), crash));
    assertTrue(e.getMessage().contains("simulated crash"), e.toString());
  }

  @Test
  void resumeOnSameAndOnMoreRanksGivesTheUninterruptedWeights() throws Exception {
    for (int ranks : new int[] {2, 3}) {
      Path out = tmp.resolve("resume-" + ranks);
      crashAfterStep5(out);
      assertEquals(List.of(3L), steps(out));
      assertTrue(TrainingCheckpoint.isCommitted(TrainingCheckpoint.dirFor(out, 3)));
      // an interrupted save: directory without the commit marker
      Path partial = TrainingCheckpoint.dirFor(out, 6);
      Files.createDirectories(partial.resolve("optimizer"));
      Files.writeString(partial.resolve("trainer_state.json"), "{ half written");
      String log = Ranks.run(ranks, cfg(out, 6 / ranks));
      assertTrue(log.contains("deleted interrupted (uncommitted) checkpoint " + partial), log);
      assertTrue(log.contains("at step 3 (written by 2 ranks, now " + ranks + ")"), log);
      double err =
          Ranks.relError(
              Ranks.tensors(out.resolve("pt_lora_model/adapter_model.safetensors")), uninterrupted);
      System.out.printf("resume 2 -> %d ranks vs uninterrupted: relative error %.3e%n", ranks, err);
      assertTrue(err <= 1e-6, "relative error " + err);
      TrainerState st = TrainingCheckpoint.readState(TrainingCheckpoint.dirFor(out, 8));
      assertEquals(8, st.globalStep());
      assertEquals(8, st.optimizerAppliedSteps());
      assertEquals(ranks, st.worldSize());
      assertEquals(6, st.globalBatchSize());
    }
  }

  /**
   * A resume that stores the frozen base weights in another dtype (e.g. a GPU run in float16
   * resumed on CPU, where torch_dtype=auto means float32) continues, but says so.
   */
  @Test
  void resumingWithAnotherBaseWeightDtypeContinuesWithANote() throws Exception {
    Path out = tmp.resolve("dtype");
    crashAfterStep5(out);
    assertEquals(
        "float32",
        TrainingCheckpoint.readState(TrainingCheckpoint.dirFor(out, 3)).baseWeightsDtype());
    String log = Ranks.run(2, cfg(out, 3, "torch_dtype=float16"));
    assertTrue(
        log.contains("was trained against float32 base weights, this run stores them as float16"),
        log);
    assertEquals(
        "float16",
        TrainingCheckpoint.readState(TrainingCheckpoint.dirFor(out, 8)).baseWeightsDtype());
  }

  @Test
  void mismatchingCheckpointsAreRefused() throws Exception {
    Path out = tmp.resolve("refuse");
    crashAfterStep5(out);
    String ckpt = TrainingCheckpoint.dirFor(out, 3).toString();

    Exception rank = assertThrows(Exception.class, () -> Ranks.run(2, cfg(out, 3, "lora_rank=8")));
    assertTrue(rank.getMessage().contains(ckpt), rank.getMessage());
    assertTrue(
        rank.getMessage().contains("lora.r is 4 in the checkpoint but 8"), rank.getMessage());

    Path other = TinyRun.writeModel(tmp.resolve("other-model"), TinyRun.tinyConfig(), 12);
    Exception m =
        assertThrows(
            Exception.class, () -> Ranks.run(2, cfg(out, 3, "model_name_or_path=" + other)));
    assertTrue(m.getMessage().contains(ckpt + ": model_fingerprint"), m.getMessage());

    Path otherData =
        TinyRun.writeDataset(
            tmp.resolve("other-data"),
            TinyRun.blocks(60, 12, 40, 9),
            TinyRun.blocks(4, 12, 40, 2),
            12,
            40,
            TinyRun.TOKENIZER_SHA);
    Exception d =
        assertThrows(Exception.class, () -> Ranks.run(2, cfg(out, 3, "dataset_dir=" + otherData)));
    assertTrue(d.getMessage().contains(ckpt + ": dataset_manifest_sha256"), d.getMessage());

    Exception g = assertThrows(Exception.class, () -> Ranks.run(2, cfg(out, 2)));
    assertTrue(
        g.getMessage().contains("global_batch_size is 6 in the checkpoint but 4"), g.getMessage());
    assertFalse(Files.exists(out.resolve("pt_lora_model")));
  }
}
