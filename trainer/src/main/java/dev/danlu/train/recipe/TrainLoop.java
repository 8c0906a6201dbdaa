package dev.danlu.train.recipe;

import dev.danlu.train.comm.Communicator;
import dev.danlu.train.comm.ReduceOp;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.data.BatchPlan;
import dev.danlu.train.data.LengthGrouping;
import dev.danlu.train.data.TrainData;
import dev.danlu.train.model.Batch;
import dev.danlu.train.optim.AdamW;
import dev.danlu.train.optim.DynamicLossScaler;
import dev.danlu.train.optim.LrSchedule;
import dev.danlu.train.zero.FlatParams;
import dev.danlu.train.zero.Zero2Optimizer;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The training loop every recipe runs, as one rank of a data-parallel job: the {@link BatchPlan}
 * slice of every global batch → {@link StepRunner} (micro-batches, ZeRO-2 step) → loss averaged
 * over ranks, step log and progress → periodic evaluation and checkpoints ({@link
 * CheckpointManager}) → the final adapter. Resumes from the newest committed checkpoint in {@code
 * output_dir}, on any world size with the same global batch. A recipe supplies only its model, its
 * data ({@link TrainData}) and its loss ({@link Objective}).
 */
public final class TrainLoop {
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

  static final StepHook NO_HOOK = new StepHook() {};

  /**
   * A run whose optimizer steps come in iterations that make their own training data (PPO: the
   * iteration's rollouts, then {@code ppo_epochs} passes of mini-batch steps over them). The loop
   * stays the one loop: it asks the iterations how many steps there are, which {@link BatchPlan}
   * step's rows a loop step trains on, lets them prepare before each step, checkpoints only at
   * their boundaries and carries their state in its checkpoints.
   */
  public interface Iterations {
    /** Optimizer steps of the whole run. */
    long totalSteps(BatchPlan plan);

    /** The plan step whose rows loop step {@code step} (0-based) trains on. */
    long planStep(long step);

    /** Before loop step {@code step} (collective: every rank calls it), e.g. make rollouts. */
    void beforeStep(long step, BatchPlan plan) throws IOException;

    /** Whether a checkpoint may be written after {@code done} steps (a resume restarts there). */
    boolean boundary(long done);

    /** Writes the iterations' own state into a checkpoint directory (rank 0, before commit). */
    void save(Path checkpointDir) throws IOException;

    /** Restores that state from the checkpoint a run resumes from (every rank). */
    void restore(Path checkpointDir) throws IOException;
  }

  private final PrintStream log;
  private final StepHook hook;

  TrainLoop(PrintStream log, StepHook hook) {
    this.log = log;
    this.hook = hook;
  }

  public TrainLoop(PrintStream log) {
    this(log, NO_HOOK);
  }

  /**
   * Trains rank {@code ctx.rank()} to the end (collective: every rank calls it) and writes the
   * final adapter to {@code output_dir/<finalName>}.
   */
  public Result run(
      TrainContext ctx, ModelSetup model, TrainData data, Objective objective, String finalName)
      throws IOException {
    return run(ctx, model, data, objective, finalName, null);
  }

  /** As above, the steps organised by {@code iter} (null: one plan step per loop step). */
  public Result run(
      TrainContext ctx,
      ModelSetup model,
      TrainData data,
      Objective objective,
      String finalName,
      Iterations iter)
      throws IOException {
    TrainConfig cfg = ctx.config();
    Communicator comm = ctx.comm();
    int rank = ctx.rank();
    int world = ctx.worldSize();
    require(cfg.outputDir(), "output_dir");
    if (model.resizedFrom() > 0) {
      info(
          rank,
          "vocabulary resized from "
              + model.resizedFrom()
              + " to the tokenizer's "
              + model.config().vocabSize()
              + " (embed_tokens, lm_head trained in full)");
    }
    int accum = cfg.gradientAccumulationSteps();
    BatchPlan plan =
        new BatchPlan(cfg.seed(), data.trainRows(), cfg.perDeviceTrainBatchSize(), accum, world);
    long total =
        iter != null
            ? iter.totalSteps(plan)
            : plan.totalSteps(cfg.maxSteps(), cfg.numTrainEpochs());
    long warmup = cfg.warmupStepsFor((int) total);
    DynamicLossScaler scaler =
        cfg.fp16()
            ? new DynamicLossScaler(
                Math.pow(2, cfg.initialScalePower()),
                2.0,
                cfg.lossScaleWindow(),
                cfg.hysteresis(),
                cfg.minLossScale())
            : DynamicLossScaler.disabled();
    Zero2Optimizer.Config optCfg =
        new Zero2Optimizer.Config(
            new AdamW(cfg.adamBeta1(), cfg.adamBeta2(), cfg.adamEpsilon()),
            cfg.learningRate(),
            cfg.weightDecay(),
            cfg.maxGradNorm(),
            Math.max(1, cfg.reduceBucketMb() * (1 << 20) / 4 / world),
            schedule(cfg.lrSchedulerType(), warmup, total));
    // closed on every exit: a backward that throws mid-overlap must not leave the communication
    // thread (holding the communicator and the gradient buffer) behind in a long-lived executor
    try (StepRunner runner =
        new StepRunner(
            comm,
            model.config(),
            model.weights(),
            model.adapter(),
            objective,
            optCfg,
            scaler,
            cfg.overlapComm(),
            cfg.gradientCheckpointing(),
            cfg.attention())) {
      Zero2Optimizer opt = runner.optimizer();
      ResumeCheck check = ResumeCheck.of(cfg, model, data, plan, world, total);
      info(
          rank,
          String.format(
              Locale.ROOT,
              "world %d (%s, overlap_comm %s, %s gradients), %s, global batch %d,"
                  + " %d steps (%d per epoch), warmup %d; trainable %d; optimizer state on this rank"
                  + " %d bytes = 12 x %d (partition of %d padded)",
              world,
              comm.kind(),
              cfg.overlapComm(),
              runner.flat().directGrads() ? "direct" : "array",
              data.describe(),
              plan.globalBatch(),
              total,
              plan.stepsPerEpoch(),
              warmup,
              runner.flat().total(),
              opt.stateBytes(),
              opt.shard().size(),
              runner.flat().padded()));
      CheckpointManager ckpt =
          new CheckpointManager(
              comm,
              Path.of(cfg.outputDir()),
              check,
              model,
              cfg.modelNameOrPath(),
              cfg.saveTotalLimit(),
              m -> info(rank, m));
      AdaLoraStep adalora =
          model.adapter().svd != null ? new AdaLoraStep(runner, model.adapter()) : null;
      if (adalora != null) {
        ckpt.extraState(adalora);
        info(
            rank,
            "AdaLoRA: "
                + adalora.allocator().initBudget()
                + " singular triplets pruned to "
                + adalora.allocator().targetBudget()
                + " by step "
                + (model.adapter().svd.totalStep() - model.adapter().svd.tfinal())
                + " (total_step "
                + model.adapter().svd.totalStep()
                + ", this run "
                + total
                + " steps)");
      }
      ProgressListener progress = ctx.progress();
      long start =
          ckpt.resume(
              runner,
              (dir, step) -> {
                if (iter != null) {
                  try {
                    iter.restore(Path.of(dir));
                  } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                  }
                }
                if (rank == 0) {
                  progress.onResume(step, dir);
                }
              });
      BestModel best = BestModel.of(cfg);
      if (best != null) {
        if (data.validationRows() == 0) {
          throw new IllegalArgumentException(
              "load_best_model_at_end / early_stopping_patience need a validation split, and the"
                  + " dataset "
                  + cfg.datasetDir()
                  + " has none: prepare it with a validation split, or turn both off");
        }
        if (ckpt.resumedState() != null) {
          best.restore(ckpt.resumedState().best());
        }
      }
      long stoppedAt = total;
      // a checkpoint written when early stopping fired: the run is over
      long end = best != null && best.shouldStop() ? start : total;
      if (end < total) {
        info(rank, "the resumed checkpoint had stopped early: no more steps");
        stoppedAt = start;
      }
      Evaluator eval =
          new Evaluator(
              model, data, objective, cfg.perDeviceEvalBatchSize(), comm, cfg.attention());
      StepLog stepLog =
          new StepLog(
              log, rank, world, total, start, cfg.loggingSteps(), cfg.loggingFirstStep(), scaler);
      double lastLoss = Double.NaN;
      double evalLoss = Double.NaN;
      LengthGrouping grouping = cfg.groupByLength() ? new LengthGrouping(plan, data::length) : null;
      for (long step = start; step < end; step++) {
        long t0 = System.nanoTime();
        // before any gradient reaches the flat buffer: with overlap_comm, regions are reduced
        // during backward, and what the hook adds must be in them (gradients are added, not copied)
        hook.beforeStep(rank, step, runner.flat());
        if (iter != null) {
          iter.beforeStep(step, plan);
        }
        long planStep = iter != null ? iter.planStep(step) : step;
        List<Batch> micro = new ArrayList<>(accum);
        for (int m = 0; m < accum; m++) {
          long[] rows =
              grouping != null
                  ? grouping.rowsFor(planStep, rank, m)
                  : plan.rowsFor(planStep, rank, m);
          micro.add(data.trainBatch(rows, step));
        }
        StepRunner.Outcome o = runner.step(micro, (double) accum * world);
        hook.afterStep(rank, step, runner.flat(), o.result());
        if (adalora != null) {
          adalora.afterStep(step, o.result());
        }
        long done = step + 1;
        if (o.microBatchesWithTargets() < accum) {
          log.printf(
              Locale.ROOT,
              "[rank %d] step %d: %d of %d micro-batches had no label token and were skipped%n",
              rank,
              done,
              accum - o.microBatchesWithTargets(),
              accum);
        }
        // the step's loss: the mean of the micro-batch losses over all ranks (HF's logged loss)
        float[] loss = {(float) o.lossSum(), o.microBatchesWithTargets()};
        comm.allReduce(loss, 0, 2, ReduceOp.SUM);
        lastLoss = loss[1] > 0 ? loss[0] / (double) loss[1] : Double.NaN;
        if (loss[1] == 0) {
          info(
              rank,
              "step "
                  + done
                  + ": no micro-batch on any rank had a label token; the step's loss is undefined"
                  + " (NaN) and its gradients are zero");
        }
        stepLog.step(
            done,
            lastLoss,
            o.result(),
            o.tokens(),
            (System.nanoTime() - t0) / 1e9,
            o.forwardBackwardNanos() / 1e9,
            o.afterBackwardNanos() / 1e9,
            progress);
        if (objective instanceof ObjectiveMetrics om
            && ((cfg.loggingSteps() > 0 && done % cfg.loggingSteps() == 0) || done == total)) {
          ObjectiveMetrics.logMeans(comm, om, true, "step " + done, log);
        }
        boolean newBest = false;
        if (cfg.evalSteps() > 0 && done % cfg.evalSteps() == 0) {
          evalLoss = evaluate(eval, rank, done, progress);
          if (objective instanceof ObjectiveMetrics om) {
            ObjectiveMetrics.logMeans(comm, om, false, "eval step " + done, log);
          }
          if (best != null) {
            // the same on every rank: the loss is all-reduced before anyone compares it
            newBest = best.onEvaluate(best.metricOf(evalLoss), done);
            info(
                rank,
                String.format(
                    Locale.ROOT,
                    "%s %.6f at step %d; best %.6f at step %d%s",
                    best.metric(),
                    best.metricOf(evalLoss),
                    done,
                    best.best() == null ? Double.NaN : best.best(),
                    best.bestStep(),
                    cfg.earlyStoppingPatience() > 0
                        ? "; early stopping " + best.counter() + "/" + cfg.earlyStoppingPatience()
                        : ""));
          }
        }
        boolean stop = best != null && best.shouldStop();
        // a new best is always written: the best model is a checkpoint, as in Hugging Face; PPO
        // (iter) checkpoints only at iteration boundaries
        if ((((cfg.saveSteps() > 0 && done % cfg.saveSteps() == 0) || done == total)
                && (iter == null || iter.boundary(done)))
            || (newBest && cfg.loadBestModelAtEnd())) {
          Path dir =
              ckpt.save(
                  opt,
                  done,
                  lastLoss,
                  best == null ? null : best.state(),
                  iter == null ? null : iter::save);
          if (rank == 0) {
            progress.onCheckpoint(done, dir.toString());
          }
        }
        if (stop) {
          info(
              rank,
              "early stopping at step "
                  + done
                  + ": "
                  + best.counter()
                  + " evaluations without an improvement of more than "
                  + cfg.earlyStoppingThreshold()
                  + " in "
                  + best.metric());
          stoppedAt = done;
          break;
        }
      }
      if (cfg.overlapComm()) {
        info(
            rank,
            "overlap_comm: "
                + opt.regionsReducedDuringBackward()
                + " gradient regions reduced while backward ran");
      }
      Path adapterDir =
          best != null && cfg.loadBestModelAtEnd() && best.bestStep() > 0
              ? ckpt.saveFinalFrom(best.bestStep(), finalName)
              : ckpt.saveFinal(finalName);
      return new Result(stoppedAt, lastLoss, evalLoss, adapterDir);
    }
  }

  private double evaluate(Evaluator eval, int rank, long step, ProgressListener progress)
      throws IOException {
    Evaluator.Result e = eval.run();
    if (e.tokens() > 0 && rank == 0) {
      progress.onEval(step, e.loss(), e.tokens());
    }
    if (e.tokens() > 0 && eval.objective() instanceof ObjectiveMetrics) {
      // a preference loss is per sequence, not per token: no perplexity
      info(
          rank,
          String.format(
              Locale.ROOT,
              "eval step %d: eval_loss %.4f (%d sequences)",
              step,
              e.loss(),
              e.tokens()));
    } else if (e.tokens() > 0) {
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

  /** Fails naming a required config key that is not set. */
  public static void require(String value, String key) {
    if (value == null || value.isBlank()) {
      throw new IllegalArgumentException(
          key
              + " is not set; give it in the YAML config or as "
              + key
              + "=... on the command line");
    }
  }
}
