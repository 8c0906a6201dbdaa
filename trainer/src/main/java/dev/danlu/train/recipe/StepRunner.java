package dev.danlu.train.recipe;

import dev.danlu.train.comm.Communicator;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.model.AttentionImpl;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.optim.DynamicLossScaler;
import dev.danlu.train.zero.FlatParams;
import dev.danlu.train.zero.Zero2Optimizer;
import java.util.List;

/**
 * One optimizer step of data-parallel training on this rank, the body every recipe and the step
 * benchmarks share: forward and backward of each micro-batch with gradients accumulated in the
 * model → one ZeRO-2 step (a single reduce-scatter, by default overlapped with the last
 * micro-batch's backward: {@code overlap_comm}) → updated parameters copied back into the model.
 */
public final class StepRunner implements AutoCloseable {
  /** ZeRO partitions start at multiples of this many floats (64-byte lines). */
  static final int ALIGNMENT = 16;

  /** What one step did on this rank. */
  public record Outcome(
      double lossSum,
      int microBatchesWithTargets,
      long tokens,
      long forwardBackwardNanos,
      long handOverNanos,
      long optimizerNanos,
      Zero2Optimizer.StepResult result) {
    /** Gradient hand-over, ZeRO-2 step with its collectives and parameter copy-back. */
    public long afterBackwardNanos() {
      return handOverNanos + optimizerNanos;
    }
  }

  private final LlamaWeights weights;
  private final LoraAdapter adapter;
  private final Objective objective;
  private final AdapterFlat flat;
  private final Zero2Optimizer opt;
  private boolean overlap;
  private final StateCache states;

  /** As below with {@link AttentionImpl#AUTO}. */
  public StepRunner(
      Communicator comm,
      LlamaConfig config,
      LlamaWeights weights,
      LoraAdapter adapter,
      Objective objective,
      Zero2Optimizer.Config optimizer,
      DynamicLossScaler scaler,
      boolean overlap,
      boolean checkpointing) {
    this(
        comm,
        config,
        weights,
        adapter,
        objective,
        optimizer,
        scaler,
        overlap,
        checkpointing,
        AttentionImpl.AUTO);
  }

  /**
   * @param config the model's config with the effective vocabulary (the adapter's embed_tokens /
   *     lm_head rows, which a vocabulary resize makes larger than the frozen weights')
   * @param overlap reduce-scatter finished gradient regions during the last micro-batch's backward
   * @param checkpointing recompute each layer's activations in backward (gradient_checkpointing)
   * @param attention the attention kernel (attn_implementation)
   */
  public StepRunner(
      Communicator comm,
      LlamaConfig config,
      LlamaWeights weights,
      LoraAdapter adapter,
      Objective objective,
      Zero2Optimizer.Config optimizer,
      DynamicLossScaler scaler,
      boolean overlap,
      boolean checkpointing,
      AttentionImpl attention) {
    this.weights = weights;
    this.adapter = adapter;
    this.objective = objective;
    this.flat = new AdapterFlat(adapter, comm.worldSize(), ALIGNMENT, comm.zeroCopyBuffers());
    this.opt = new Zero2Optimizer(comm, flat.flat(), optimizer, scaler);
    this.overlap = overlap;
    this.states = new StateCache(config, adapter.config, checkpointing, attention);
  }

  /**
   * Runs one step over this rank's micro-batches; {@code divisor} turns the summed gradients into
   * the global mean (micro-batches per rank × ranks).
   */
  public Outcome step(List<Batch> microBatches, double divisor) {
    long t0 = System.nanoTime();
    double lossSum = 0;
    int withTargets = 0;
    long tokens = 0;
    double reg = 0;
    if (adapter.svd != null) {
      // AdaLoRA: A ⊙ E for this step's forwards, and the orthogonality regulariser PEFT adds to
      // every micro-batch's loss: its gradient enters once per micro-batch (loss-scaled), so after
      // the step's division by micro-batches × ranks it counts once, as in HF + PEFT
      adapter.syncSvd();
      reg =
          adapter.svd.orthRegWeight()
              * dev.danlu.train.lora.OrthReg.addGradient(
                  adapter,
                  adapter.svd.orthRegWeight() * opt.scaler().scale() * microBatches.size());
    }
    for (int micro = 0; micro < microBatches.size(); micro++) {
      Batch b = microBatches.get(micro);
      tokens += (long) b.batch() * b.seq();
      boolean last = micro == microBatches.size() - 1;
      boolean targets = objective.hasTargets(b);
      if (!targets && !(overlap && last)) {
        continue; // no gradient to add; its share of the step's mean stays zero
      }
      // (under overlap the last micro-batch's backward drives the region-by-region reduce, the
      // same collectives on every rank: one without targets still runs, its gradients all zero)
      LlamaState s = state(b);
      double loss = objective.forward(weights, adapter, s, b);
      if (targets) {
        withTargets++;
        lossSum += loss + reg;
      }
      double scale = opt.scaler().scale();
      if (overlap && last) {
        // last micro-batch: each finished region of the flat buffer is reduced while the layers
        // below it are still back-propagating
        objective.backward(
            weights, adapter, s, scale, depth -> opt.gradientsReady(flat.moveFinalGrads(depth)));
      } else {
        objective.backward(weights, adapter, s, scale, null);
      }
    }
    long t1 = System.nanoTime();
    flat.moveGradsToFlat(); // what the overlap has not moved yet (everything without it)
    long t2 = System.nanoTime();
    Zero2Optimizer.StepResult r = opt.step(divisor);
    long t3 = System.nanoTime();
    flat.copyParamsToModel();
    long t4 = System.nanoTime();
    return new Outcome(lossSum, withTargets, tokens, t1 - t0, (t2 - t1) + (t4 - t3), t3 - t2, r);
  }

  /** The activation state for a batch's shape (kept across steps while shapes repeat). */
  LlamaState state(Batch b) {
    return states.get(b.batch(), b.seq());
  }

  /** Switches overlap_comm for the following steps (OverlapBench alternates it). */
  public void overlap(boolean on) {
    this.overlap = on;
  }

  public Zero2Optimizer optimizer() {
    return opt;
  }

  public FlatParams flat() {
    return flat.flat();
  }

  AdapterFlat adapterFlat() {
    return flat;
  }

  /** Stops the optimizer's communication thread if a step was abandoned mid-backward. */
  @Override
  public void close() {
    opt.close();
  }
}
