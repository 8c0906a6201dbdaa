package dev.danlu.train.recipe;

import dev.danlu.train.checkpoint.TrainerState;
import dev.danlu.train.checkpoint.TrainingCheckpoint;
import dev.danlu.train.comm.Communicator;
import dev.danlu.train.comm.ReduceOp;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.data.BatchPlan;
import dev.danlu.train.data.ShardBlocks;
import dev.danlu.train.lora.PeftBridge;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.Llama;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.optim.AdamW;
import dev.danlu.train.optim.DynamicLossScaler;
import dev.danlu.train.optim.LrSchedule;
import dev.danlu.train.zero.FlatParams;
import dev.danlu.train.zero.Zero2Optimizer;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Continued pretraining with LoRA (the reference run_clm_pt_with_peft), as one rank of a
 * data-parallel job: shard dataset → {@link BatchPlan} slice of every global batch → forward and
 * backward per micro-batch, gradients accumulated locally → one ZeRO-2 step (a single
 * reduce-scatter, by default overlapped with the last micro-batch's backward: overlap_comm) →
 * periodic evaluation, logging and checkpoints. Resumes from the newest committed checkpoint in
 * {@code output_dir}, on any world size with the same global batch.
 */
public final class PretrainRecipe {
  /** ZeRO partitions start at multiples of this many floats (64-byte lines). */
  static final int ALIGNMENT = 16;

  /** What a finished run reports. */
  public record Result(long steps, double lastLoss, double evalLoss, Path adapterDir) {}

  /**
   * Test-only view of each optimizer step, for injecting faults the real code must survive (the
   * recipe tests overflow one rank's gradients). Package-private: production code cannot set it.
   */
  interface StepHook {
    /**
     * Sees this rank's flat parameters before the step's first micro-batch, while {@code
     * flat.grads()} is still zero: whatever the hook writes there is added to the step's
     * loss-scaled gradients (also under overlap_comm, whose reduce starts during backward); {@code
     * step} is the 0-based step about to run. {@code flat.grads()} exists only for array gradients
     * (in-process ranks); on the TCP ring they live in a direct buffer.
     */
    default void beforeStep(int rank, long step, FlatParams flat) {}

    /** Sees what the optimizer step did on this rank. */
    default void afterStep(int rank, long step, FlatParams flat, Zero2Optimizer.StepResult r) {}
  }

  private static final StepHook NO_HOOK = new StepHook() {};

  private final PrintStream log;
  private StepHook hook = NO_HOOK;

  /** Installs a test hook (see {@link StepHook}); returns this. */
  PretrainRecipe withStepHook(StepHook h) {
    this.hook = h;
    return this;
  }

  public PretrainRecipe(PrintStream log) {
    this.log = log;
  }

  public PretrainRecipe() {
    this(System.err);
  }

  /** Runs rank {@code ctx.rank()} to the end of training (collective: every rank calls it). */
  public Result run(TrainContext ctx) throws IOException {
    TrainConfig cfg = ctx.config();
    Communicator comm = ctx.comm();
    int rank = ctx.rank();
    int world = ctx.worldSize();
    require(cfg.modelNameOrPath(), "model_name_or_path");
    require(cfg.datasetDir(), "dataset_dir");
    require(cfg.outputDir(), "output_dir");
    Path out = Path.of(cfg.outputDir());
    Path datasetDir = Path.of(cfg.datasetDir());
    String tokSha = null;
    if (cfg.tokenizerNameOrPath() != null) {
      Path t = Path.of(cfg.tokenizerNameOrPath());
      tokSha = ModelSetup.sha256(Files.isDirectory(t) ? t.resolve("tokenizer.model") : t);
    }
    var manifest = dev.danlu.data.manifest.ManifestIo.readCurrent(datasetDir);
    ModelSetup model = ModelSetup.load(cfg, manifest.params());
    if (model.resizedFrom() > 0) {
      info(
          rank,
          "vocabulary resized from "
              + model.resizedFrom()
              + " to the tokenizer's "
              + model.config().vocabSize()
              + " (embed_tokens, lm_head trained in full)");
    }
    try (ShardBlocks data =
        ShardBlocks.open(datasetDir, cfg.blockSize(), tokSha, model.config().vocabSize())) {
      return train(ctx, cfg, comm, rank, world, out, model, data);
    }
  }

  private Result train(
      TrainContext ctx,
      TrainConfig cfg,
      Communicator comm,
      int rank,
      int world,
      Path out,
      ModelSetup model,
      ShardBlocks data)
      throws IOException {
    BatchPlan plan =
        new BatchPlan(
            cfg.seed(),
            data.trainRows(),
            cfg.perDeviceTrainBatchSize(),
            cfg.gradientAccumulationSteps(),
            world);
    long total = plan.totalSteps(cfg.maxSteps(), cfg.numTrainEpochs());
    long warmup = cfg.warmupStepsFor((int) total);
    LrSchedule schedule = schedule(cfg.lrSchedulerType(), warmup, total);
    AdapterFlat af = new AdapterFlat(model.adapter(), world, ALIGNMENT, comm.zeroCopyBuffers());
    DynamicLossScaler scaler =
        cfg.fp16()
            ? new DynamicLossScaler(
                Math.pow(2, cfg.initialScalePower()),
                2.0,
                cfg.lossScaleWindow(),
                cfg.hysteresis(),
                cfg.minLossScale())
            : DynamicLossScaler.disabled();
    int bucket = Math.max(1, cfg.reduceBucketMb() * (1 << 20) / 4 / world);
    Zero2Optimizer opt =
        new Zero2Optimizer(
            comm,
            af.flat(),
            new Zero2Optimizer.Config(
                new AdamW(cfg.adamBeta1(), cfg.adamBeta2(), cfg.adamEpsilon()),
                cfg.learningRate(),
                cfg.weightDecay(),
                cfg.maxGradNorm(),
                bucket,
                schedule),
            scaler);
    // closed on every exit: a backward that throws mid-overlap must not leave the communication
    // thread (holding the communicator and the gradient buffer) behind in a long-lived executor
    try (opt) {
      ResumeCheck check = ResumeCheck.of(cfg, model, data, plan, world);
      info(
          rank,
          String.format(
              Locale.ROOT,
              "world %d (%s, overlap_comm %s, %s gradients), %d train / %d validation blocks of %d tokens, global batch %d,"
                  + " %d steps (%d per epoch), warmup %d; trainable %d; optimizer state on this rank"
                  + " %d bytes = 12 x %d (partition of %d padded)",
              world,
              comm.kind(),
              cfg.overlapComm(),
              af.flat().directGrads() ? "direct" : "array",
              data.trainRows(),
              data.validationRows(),
              data.blockSize(),
              plan.globalBatch(),
              total,
              plan.stepsPerEpoch(),
              warmup,
              af.flat().total(),
              opt.stateBytes(),
              opt.shard().size(),
              af.flat().padded()));

      long start = resume(comm, rank, out, check, af, opt);
      LlamaState state =
          new LlamaState(
              model.config(),
              cfg.perDeviceTrainBatchSize(),
              data.blockSize(),
              model.adapter().config,
              cfg.gradientCheckpointing(),
              DataType.FLOAT);
      Evaluator eval = new Evaluator(model, data, cfg.perDeviceEvalBatchSize(), comm);
      StepLog stepLog =
          new StepLog(
              log, rank, world, total, start, cfg.loggingSteps(), cfg.loggingFirstStep(), scaler);
      double lastLoss = Double.NaN;
      double evalLoss = Double.NaN;
      int accum = cfg.gradientAccumulationSteps();
      for (long step = start; step < total; step++) {
        long t0 = System.nanoTime();
        // before any gradient reaches the flat buffer: with overlap_comm, regions are reduced
        // during backward, and what the hook adds must be in them (gradients are added, not copied)
        hook.beforeStep(rank, step, af.flat());
        double lossSum = 0;
        long tokens = 0;
        for (int micro = 0; micro < accum; micro++) {
          Batch b = data.trainBatch(plan.rowsFor(step, rank, micro), step);
          lossSum += Llama.forward(model.weights(), model.adapter(), state, b);
          tokens += (long) b.batch() * b.seq();
          if (cfg.overlapComm() && micro == accum - 1) {
            // last micro-batch: each finished region of the flat buffer is reduced while the
            // layers below it are still back-propagating
            Llama.backward(
                model.weights(),
                model.adapter(),
                state,
                scaler.scale(),
                depth -> opt.gradientsReady(af.moveFinalGrads(depth)));
          } else {
            Llama.backward(model.weights(), model.adapter(), state, scaler.scale());
          }
        }
        long t1 = System.nanoTime();
        af.moveGradsToFlat(); // what the overlap has not moved yet (everything without it)
        Zero2Optimizer.StepResult r = opt.step((double) accum * world);
        hook.afterStep(rank, step, af.flat(), r);
        af.copyParamsToModel();
        long t2 = System.nanoTime();
        long done = step + 1;
        float[] loss = {(float) lossSum};
        comm.allReduce(loss, 0, 1, ReduceOp.SUM);
        lastLoss = loss[0] / ((double) accum * world);
        double secs = (System.nanoTime() - t0) / 1e9;
        stepLog.step(
            done, lastLoss, r, tokens, secs, (t1 - t0) / 1e9, (t2 - t1) / 1e9, ctx.progress());
        if (cfg.evalSteps() > 0 && done % cfg.evalSteps() == 0) {
          evalLoss = evaluate(eval, rank, done);
        }
        if ((cfg.saveSteps() > 0 && done % cfg.saveSteps() == 0) || done == total) {
          save(comm, rank, out, cfg, model, check, opt, done, lastLoss);
        }
      }
      if (cfg.overlapComm()) {
        info(
            rank,
            "overlap_comm: "
                + opt.regionsReducedDuringBackward()
                + " gradient regions reduced while backward ran");
      }
      Path adapterDir = out.resolve("pt_lora_model");
      if (rank == 0) {
        PeftBridge.toPeft(model.adapter(), cfg.modelNameOrPath()).save(adapterDir);
        info(rank, "final adapter written to " + adapterDir);
      }
      comm.barrier();
      return new Result(total, lastLoss, evalLoss, adapterDir);
    }
  }

  private double evaluate(Evaluator eval, int rank, long step) throws IOException {
    Evaluator.Result e = eval.run();
    if (e.tokens() > 0) {
      info(
          rank,
          String.format(
              Locale.ROOT,
              "eval step %d: eval_loss %.4f perplexity %.3f (%d tokens)",
              step,
              e.loss(),
              Math.exp(e.loss()),
              e.tokens()));
    }
    return e.loss();
  }

  /** Restores the newest committed checkpoint, if any; returns the step to continue from. */
  private long resume(
      Communicator comm, int rank, Path out, ResumeCheck check, AdapterFlat af, Zero2Optimizer opt)
      throws IOException {
    String chosen = "";
    if (rank == 0) {
      for (Path p : TrainingCheckpoint.deleteUncommitted(out)) {
        info(rank, "deleted interrupted (uncommitted) checkpoint " + p);
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
    warning.ifPresent(w -> info(rank, w));
    opt.importState(TrainingCheckpoint.readOptimizerState(dir, af.flat(), opt.shard()));
    af.copyParamsToModel();
    info(
        rank,
        "resumed from "
            + dir
            + " at step "
            + st.globalStep()
            + " (written by "
            + st.worldSize()
            + " ranks, now "
            + comm.worldSize()
            + ")");
    return st.globalStep();
  }

  private void save(
      Communicator comm,
      int rank,
      Path out,
      TrainConfig cfg,
      ModelSetup model,
      ResumeCheck check,
      Zero2Optimizer opt,
      long step,
      double lastLoss)
      throws IOException {
    Path dir = TrainingCheckpoint.dirFor(out, step);
    if (rank == 0) {
      Files.createDirectories(dir);
    }
    comm.barrier();
    TrainingCheckpoint.writeOptimizerState(dir, rank, comm.worldSize(), opt.exportState());
    if (rank == 0) {
      PeftBridge.toPeft(model.adapter(), cfg.modelNameOrPath()).save(dir);
      TrainingCheckpoint.writeState(dir, check.state(step, opt, lastLoss));
    }
    comm.barrier(); // every rank's optimizer file is complete before the marker
    if (rank == 0) {
      TrainingCheckpoint.commit(dir);
      for (Path p : TrainingCheckpoint.retain(out, cfg.saveTotalLimit())) {
        info(
            rank,
            "deleted old checkpoint " + p + " (save_total_limit " + cfg.saveTotalLimit() + ")");
      }
      info(rank, "checkpoint committed: " + dir);
    }
    comm.barrier();
  }

  static LrSchedule schedule(TrainConfig.SchedulerType type, long warmup, long total) {
    return switch (type) {
      case LINEAR -> LrSchedule.linear(warmup, total);
      case COSINE -> LrSchedule.cosine(warmup, total);
      case CONSTANT -> LrSchedule.constant();
      case CONSTANT_WITH_WARMUP -> s -> s < warmup ? (double) s / Math.max(1, warmup) : 1.0;
    };
  }

  private void info(int rank, String msg) {
    if (rank == 0) {
      log.println("[rank " + rank + "] " + msg);
    }
  }

  private static void require(String value, String key) {
    if (value == null || value.isBlank()) {
      throw new IllegalArgumentException(
          key
              + " is not set; give it in the YAML config or as "
              + key
              + "=... on the command line");
    }
  }
}
