package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.checkpoint.SafeTensors;
import dev.danlu.train.checkpoint.TrainerState;
import dev.danlu.train.checkpoint.TrainingCheckpoint;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.optim.LrSchedule;
import dev.danlu.train.zero.FlatParams;
import dev.danlu.train.zero.Zero2Optimizer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * fp16 dynamic loss scaling through the whole recipe: 2 ranks (LocalCommunicator threads), a tiny
 * random-init LLaMA, {@code fp16: true} with the reference DeepSpeed scaler (2^16, window 100,
 * hysteresis 2, min 1e-10). Rank 1 alone gets an inf gradient at step 3 and a NaN at step 5 (at an
 * element rank 0 owns, and at one rank 1 owns), through the recipe's test hook. Every rank must
 * skip both updates, the LR schedule must stay put, the scale must follow DeepSpeed's hysteresis
 * (first overflow spends the budget, second halves 65536 → 32768), the log must say so, and a
 * checkpoint written after the skips must resume with the same scaler state to the uninterrupted
 * run's weights.
 */
class Fp16OverflowRecipeTest {
  static final int RANKS = 2;
  static final int MAX_STEPS = 8;
  static final long INF_STEP = 2; // 0-based: the 3rd step
  static final long NAN_STEP = 4; // the 5th

  @TempDir static Path tmp;
  static Path model;
  static Path data;
  static Path uninterruptedOut;
  static String uninterruptedLog;
  static Recorder uninterrupted;

  /** Injects the overflows on rank 1 and records every rank's step results and parameters. */
  static final class Recorder implements TrainLoop.StepHook {
    final Map<Integer, Map<Long, Zero2Optimizer.StepResult>> results = new ConcurrentHashMap<>();
    final Map<Integer, Map<Long, Boolean>> paramsUnchanged = new ConcurrentHashMap<>();
    private final Map<Integer, float[]> before = new ConcurrentHashMap<>();

    @Override
    public void beforeStep(int rank, long step, FlatParams flat) {
      before.put(rank, flat.params().clone());
      if (rank == 1 && step == INF_STEP) {
        flat.grads()[0] = Float.POSITIVE_INFINITY; // in rank 0's partition
      }
      if (rank == 1 && step == NAN_STEP) {
        flat.grads()[flat.total() - 1] = Float.NaN; // in rank 1's own partition
      }
    }

    @Override
    public void afterStep(int rank, long step, FlatParams flat, Zero2Optimizer.StepResult r) {
      results.computeIfAbsent(rank, k -> new TreeMap<>()).put(step, r);
      paramsUnchanged
          .computeIfAbsent(rank, k -> new TreeMap<>())
          .put(step, Arrays.equals(before.get(rank), flat.params()));
    }

    Zero2Optimizer.StepResult at(int rank, long step) {
      return results.get(rank).get(step);
    }
  }

  static TrainConfig cfg(Path out) {
    return TinyRun.config(
        model,
        data,
        out,
        "fp16=true",
        "max_steps=" + MAX_STEPS,
        "save_steps=6",
        "logging_steps=5",
        "initial_scale_power=16",
        "loss_scale_window=100",
        "hysteresis=2",
        "min_loss_scale=1e-10");
  }

  @BeforeAll
  static void uninterruptedRun() throws Exception {
    model = TinyRun.writeModel(tmp.resolve("model"), TinyRun.tinyConfig(), 11);
    data = TinyRun.writeTinyDataset(tmp.resolve("data"), 60, 4);
    uninterruptedOut = tmp.resolve("uninterrupted");
    uninterrupted = new Recorder();
    uninterruptedLog = Ranks.run(RANKS, cfg(uninterruptedOut), null, uninterrupted);
  }

  @Test
  void everyRankSkipsTheOverflowStepsAndLeavesItsWeights() {
    for (int rank = 0; rank < RANKS; rank++) {
      for (long s = 0; s < MAX_STEPS; s++) {
        boolean overflow = s == INF_STEP || s == NAN_STEP;
        Zero2Optimizer.StepResult r = uninterrupted.at(rank, s);
        assertEquals(overflow, r.skipped(), "rank " + rank + " step " + s);
        boolean unchanged = uninterrupted.paramsUnchanged.get(rank).get(s);
        if (overflow) {
          assertTrue(unchanged, "rank " + rank + " step " + s + ": a skipped step moved weights");
        } else if (r.lr() > 0) { // warmup's first update has lr 0 (Hugging Face schedules)
          assertFalse(unchanged, "rank " + rank + " step " + s + ": an applied step did nothing");
        }
      }
    }
    long[] applied = new long[MAX_STEPS];
    for (int s = 0; s < MAX_STEPS; s++) {
      applied[s] = uninterrupted.at(0, s).appliedSteps();
      assertEquals(applied[s], uninterrupted.at(1, s).appliedSteps());
    }
    assertArrayEquals(new long[] {1, 2, 2, 3, 3, 4, 5, 6}, applied);
  }

  @Test
  void theLrScheduleDoesNotAdvanceOnASkippedStep() {
    // warmup = ceil(0.2 x 8) = 2; the update after n applied steps uses lr x factor(n)
    LrSchedule schedule = TrainLoop.schedule(TrainConfig.SchedulerType.COSINE, 2, MAX_STEPS);
    double lr0 = cfg(uninterruptedOut).learningRate();
    long[] appliedBefore = {0, 1, 2, 2, 3, 3, 4, 5};
    for (int s = 0; s < MAX_STEPS; s++) {
      double want = lr0 * schedule.factor(appliedBefore[s]);
      for (int rank = 0; rank < RANKS; rank++) {
        assertEquals(want, uninterrupted.at(rank, s).lr(), 1e-15, "rank " + rank + " step " + s);
      }
    }
    assertEquals(uninterrupted.at(0, INF_STEP).lr(), uninterrupted.at(0, INF_STEP + 1).lr());
    assertEquals(uninterrupted.at(0, NAN_STEP).lr(), uninterrupted.at(0, NAN_STEP + 1).lr());
  }

  @Test
  void theLossScaleFollowsDeepSpeedHysteresisAndTheLogRecordsEverySkip() {
    // the scale each step ran at: the first overflow only spends the hysteresis budget (2 -> 1),
    // the second halves the scale; the budget comes back only when the scale next grows
    double[] want = {65536, 65536, 65536, 65536, 65536, 32768, 32768, 32768};
    for (int rank = 0; rank < RANKS; rank++) {
      for (int s = 0; s < MAX_STEPS; s++) {
        assertEquals(want[s], uninterrupted.at(rank, s).lossScale(), "rank " + rank + " step " + s);
      }
    }
    // step 3 is not a logging step (logging_steps 5): the skip is logged anyway
    assertTrue(
        uninterruptedLog.contains(
            "[rank 0] step 3/8: gradient overflow at loss scale 65536, optimizer step and LR"
                + " schedule skipped (2 steps applied); loss scale now 65536, hysteresis 1 left"),
        uninterruptedLog);
    assertTrue(
        uninterruptedLog.contains(
            "[rank 0] step 5/8: gradient overflow at loss scale 65536, optimizer step and LR"
                + " schedule skipped (3 steps applied); loss scale now 32768, hysteresis 1 left"),
        uninterruptedLog);
    assertTrue(uninterruptedLog.contains("loss_scale 65536 (overflow: step skipped)"));
    assertTrue(uninterruptedLog.contains("step 8/8 loss "), uninterruptedLog);
    assertFalse(uninterruptedLog.contains("step 8/8 loss NaN"), uninterruptedLog);
  }

  @Test
  void aCheckpointAfterTheSkipsResumesWithTheSameScaleToTheSameWeights() throws Exception {
    // what checkpoint-6 of the uninterrupted run holds: scale 32768, iteration 6, last overflow at
    // iteration 4, hysteresis 1 left, 4 updates applied, on every rank's optimizer file
    Path ckpt = TrainingCheckpoint.dirFor(uninterruptedOut, 6);
    TrainerState st = TrainingCheckpoint.readState(ckpt);
    double[] scaler = {32768, 6, 4, 1};
    assertEquals(32768, st.lossScale());
    assertArrayEquals(scaler, st.lossScalerState());
    assertEquals(4, st.optimizerAppliedSteps());
    for (int rank = 0; rank < RANKS; rank++) {
      Path f = ckpt.resolve(TrainingCheckpoint.optimizerFileName(rank, RANKS));
      try (SafeTensors in = SafeTensors.open(f)) {
        Map<String, String> md = in.metadata();
        assertEquals("4", md.get("applied_steps"), f.toString());
        assertArrayEquals(
            scaler,
            Arrays.stream(md.get("loss_scaler").split(","))
                .mapToDouble(Double::parseDouble)
                .toArray(),
            f.toString());
      }
    }

    // crash after step 7 (checkpoint-6 committed), then resume with the same hook
    Path out = tmp.resolve("resumed");
    ProgressListener crash =
        (step, max, loss, tps, eta, secs) -> {
          if (step == 7) {
            throw new IllegalStateException("simulated crash at step 7");
          }
        };
    Exception e =
        assertThrows(Exception.class, () -> Ranks.run(RANKS, cfg(out), crash, new Recorder()));
    assertTrue(e.getMessage().contains("simulated crash"), e.toString());
    Recorder resumed = new Recorder();
    // Bitwise on any CPU: the resumed run restores float32 state exactly (raw bytes) and repeats
    // the same products on the same shapes, world size and thread count as the uninterrupted one.
    String log = Ranks.run(RANKS, cfg(out), null, resumed);
    assertTrue(log.contains("resumed from " + TrainingCheckpoint.dirFor(out, 6)), log);
    for (int rank = 0; rank < RANKS; rank++) {
      assertEquals(List.of(6L, 7L), List.copyOf(resumed.results.get(rank).keySet()));
      for (long s = 6; s < MAX_STEPS; s++) {
        Zero2Optimizer.StepResult r = resumed.at(rank, s);
        Zero2Optimizer.StepResult u = uninterrupted.at(rank, s);
        assertEquals(u.lossScale(), r.lossScale(), "scale at step " + s);
        assertEquals(u.appliedSteps(), r.appliedSteps());
        assertEquals(u.lr(), r.lr());
        assertEquals(u.gradNorm(), r.gradNorm(), "same gradients after resume, step " + s);
      }
    }
    double err =
        Ranks.relError(
            Ranks.tensors(out.resolve("pt_lora_model/adapter_model.safetensors")),
            Ranks.tensors(uninterruptedOut.resolve("pt_lora_model/adapter_model.safetensors")));
    assertEquals(0.0, err, 1e-6, "resumed vs uninterrupted final adapter");
  }
}
