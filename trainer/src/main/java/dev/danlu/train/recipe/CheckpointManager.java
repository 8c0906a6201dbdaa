package dev.danlu.train.recipe;

import dev.danlu.train.checkpoint.TrainedRope;
import dev.danlu.train.checkpoint.TrainerState;
import dev.danlu.train.checkpoint.TrainingCheckpoint;
import dev.danlu.train.comm.Communicator;
import dev.danlu.train.lora.PeftBridge;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.zero.Zero2Optimizer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * The run's checkpoints in {@code output_dir}: resume from the newest committed {@code
 * checkpoint-<step>} (after deleting interrupted ones and checking it belongs to this run), save
 * one with every rank's optimizer partition and a commit marker, keep the newest {@code
 * save_total_limit}. Collective: every rank calls each method.
 */
final class CheckpointManager {
  private final Communicator comm;
  private final Path out;
  private final ResumeCheck check;
  private final ModelSetup model;
  private final String baseModel;
  private final int saveTotalLimit;
  private final Consumer<String> info;
  private TrainerState resumedState;
  private ExtraState extra;

  /** More state of the run in each checkpoint (AdaLoRA's allocator): saved by rank 0. */
  interface ExtraState {
    void save(Path dir) throws IOException;

    /** Restores on every rank, after the optimizer state and the parameters. */
    void restore(Path dir) throws IOException;
  }

  /** Saves and restores {@code x} with every checkpoint from now on. */
  void extraState(ExtraState x) {
    this.extra = x;
  }

  CheckpointManager(
      Communicator comm,
      Path out,
      ResumeCheck check,
      ModelSetup model,
      String baseModel,
      int saveTotalLimit,
      Consumer<String> info) {
    this.comm = comm;
    this.out = out;
    this.check = check;
    this.model = model;
    this.baseModel = baseModel;
    this.saveTotalLimit = saveTotalLimit;
    this.info = info;
  }

  /**
   * Restores the newest committed checkpoint into the optimizer and the model, if there is one;
   * returns the step to continue from (0 for a fresh run).
   */
  long resume(StepRunner runner) throws IOException {
    return resume(runner, (step, dir) -> {});
  }

  /** As {@link #resume(StepRunner)}; {@code resumed} hears the checkpoint chosen, if any. */
  long resume(StepRunner runner, java.util.function.ObjLongConsumer<String> resumed)
      throws IOException {
    String chosen = "";
    if (comm.rank() == 0) {
      for (Path p : TrainingCheckpoint.deleteUncommitted(out)) {
        info.accept("deleted interrupted (uncommitted) checkpoint " + p);
      }
      chosen = TrainingCheckpoint.newestCommitted(out).map(Path::toString).orElse("");
    }
    chosen =
        new String(
            comm.broadcastBytes(chosen.getBytes(StandardCharsets.UTF_8), 0),
            StandardCharsets.UTF_8);
    if (chosen.isEmpty()) {
      return 0;
    }
    Path dir = Path.of(chosen);
    TrainerState st = TrainingCheckpoint.readState(dir);
    Optional<String> warning = check.verify(dir, st);
    warning.ifPresent(info);
    Zero2Optimizer opt = runner.optimizer();
    opt.importState(TrainingCheckpoint.readOptimizerState(dir, runner.flat(), opt.shard()));
    runner.adapterFlat().copyParamsToModel();
    if (extra != null) {
      extra.restore(dir);
    }
    info.accept(
        "resumed from "
            + dir
            + " at step "
            + st.globalStep()
            + " (written by "
            + st.worldSize()
            + " ranks, now "
            + comm.worldSize()
            + ")");
    resumed.accept(dir.toString(), st.globalStep());
    resumedState = st;
    return st.globalStep();
  }

  /** The state of the checkpoint the last {@link #resume} continued from, or null. */
  TrainerState resumedState() {
    return resumedState;
  }

  /**
   * Writes and commits {@code checkpoint-<step>}, then applies the retention limit; returns its
   * directory.
   */
  Path save(Zero2Optimizer opt, long step, double lastLoss) throws IOException {
    return save(opt, step, lastLoss, null);
  }

  /**
   * As above, recording the best-model state (null: none) and keeping the best model's checkpoint
   * out of the retention limit.
   */
  Path save(Zero2Optimizer opt, long step, double lastLoss, TrainerState.Best best)
      throws IOException {
    return save(opt, step, lastLoss, best, null);
  }

  /** What a run writes into a checkpoint besides the adapter and optimizer (rank 0). */
  interface Extra {
    void write(Path dir) throws IOException;
  }

  /** As above, {@code runExtra} (may be null) written by rank 0 before the commit marker. */
  Path save(Zero2Optimizer opt, long step, double lastLoss, TrainerState.Best best, Extra runExtra)
      throws IOException {
    int rank = comm.rank();
    Path dir = TrainingCheckpoint.dirFor(out, step);
    if (rank == 0) {
      Files.createDirectories(dir);
    }
    comm.barrier();
    TrainingCheckpoint.writeOptimizerState(dir, rank, comm.worldSize(), opt.exportState());
    if (rank == 0) {
      PeftBridge.save(model.adapter(), baseModel, dir);
      if (extra != null) {
        extra.save(dir);
      }
      writeRope(dir);
      TrainingCheckpoint.writeState(dir, check.state(step, opt, lastLoss, best));
      if (runExtra != null) {
        runExtra.write(dir);
      }
    }
    comm.barrier(); // every rank's optimizer file is complete before the marker
    if (rank == 0) {
      TrainingCheckpoint.commit(dir);
      long keep = best == null ? 0 : best.bestStep();
      for (Path p : TrainingCheckpoint.retain(out, saveTotalLimit, keep)) {
        info.accept("deleted old checkpoint " + p + " (save_total_limit " + saveTotalLimit + ")");
      }
      info.accept("checkpoint committed: " + dir);
    }
    comm.barrier();
    return dir;
  }

  /**
   * Writes the adapter of {@code checkpoint-<step>} as the final one (load_best_model_at_end) to
   * {@code output_dir/<name>} on rank 0.
   */
  Path saveFinalFrom(long step, String name) throws IOException {
    Path adapterDir = out.resolve(name);
    if (comm.rank() == 0) {
      Path from = TrainingCheckpoint.dirFor(out, step);
      // the checkpoint's adapter files as they are (either adapter type), each replaced atomically
      Files.createDirectories(adapterDir);
      for (String f :
          new String[] {
            dev.danlu.train.checkpoint.PeftAdapter.CONFIG,
            dev.danlu.train.checkpoint.PeftAdapter.WEIGHTS
          }) {
        Path tmp = adapterDir.resolve(f + ".tmp");
        Files.copy(from.resolve(f), tmp, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Files.move(
            tmp,
            adapterDir.resolve(f),
            java.nio.file.StandardCopyOption.REPLACE_EXISTING,
            java.nio.file.StandardCopyOption.ATOMIC_MOVE);
      }
      Path rope = from.resolve(TrainedRope.FILE);
      if (Files.exists(rope)) {
        Files.copy(
            rope,
            adapterDir.resolve(TrainedRope.FILE),
            java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      }
      info.accept(
          "final adapter written to " + adapterDir + " (the best model, from " + from + ")");
    }
    comm.barrier();
    return adapterDir;
  }

  /**
   * rope_scaling.json beside the adapter when the model it trains has rope_scaling (position
   * interpolation set by the run, or the base model's own): {@code danlu merge} carries it into the
   * merged config.json.
   */
  private void writeRope(Path dir) throws IOException {
    LlamaConfig c = model.config();
    if (c.ropeScaling() != null) {
      TrainedRope.write(
          dir,
          new TrainedRope.Settings(
              c.ropeScaling().type().name().toLowerCase(java.util.Locale.ROOT),
              c.ropeScaling().factor(),
              c.maxPositionEmbeddings()));
    }
  }

  /** Writes the final adapter (PEFT layout) to {@code output_dir/<name>} on rank 0. */
  Path saveFinal(String name) throws IOException {
    Path adapterDir = out.resolve(name);
    if (comm.rank() == 0) {
      PeftBridge.save(model.adapter(), baseModel, adapterDir);
      writeRope(adapterDir);
      info.accept("final adapter written to " + adapterDir);
    }
    comm.barrier();
    return adapterDir;
  }
}
