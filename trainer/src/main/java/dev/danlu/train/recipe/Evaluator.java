package dev.danlu.train.recipe;

import dev.danlu.train.comm.Communicator;
import dev.danlu.train.comm.ReduceOp;
import dev.danlu.train.data.TrainData;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.model.AttentionImpl;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import java.io.IOException;

/**
 * Validation loss over the whole validation split: each rank evaluates a contiguous slice, the
 * token-weighted loss sums are all-reduced, so the result is the same on every rank and for every
 * world size (up to float summation order). Works on any {@link TrainData} and {@link Objective};
 * the demo's perplexity and the training loop's eval steps both use it.
 */
public final class Evaluator {
  /** Mean loss per token over the split, and the token count (0: empty split, loss NaN). */
  public record Result(double loss, long tokens) {}

  private final LlamaWeights weights;
  private final LoraAdapter adapter;
  private final TrainData data;
  private final Objective objective;
  private final int batch;
  private final Communicator comm;
  private final StateCache states;

  public Evaluator(
      ModelSetup model, TrainData data, Objective objective, int batch, Communicator comm) {
    this(model, data, objective, batch, comm, AttentionImpl.AUTO);
  }

  /** As above, running the {@code attention} kernel (attn_implementation). */
  public Evaluator(
      ModelSetup model,
      TrainData data,
      Objective objective,
      int batch,
      Communicator comm,
      AttentionImpl attention) {
    this(model.config(), model.weights(), model.adapter(), data, objective, batch, comm, attention);
  }

  /**
   * @param config the model's config with the effective vocabulary
   * @param adapter null to evaluate the base model alone
   */
  public Evaluator(
      LlamaConfig config,
      LlamaWeights weights,
      LoraAdapter adapter,
      TrainData data,
      Objective objective,
      int batch,
      Communicator comm) {
    this(config, weights, adapter, data, objective, batch, comm, AttentionImpl.AUTO);
  }

  /** As above, running the {@code attention} kernel. */
  public Evaluator(
      LlamaConfig config,
      LlamaWeights weights,
      LoraAdapter adapter,
      TrainData data,
      Objective objective,
      int batch,
      Communicator comm,
      AttentionImpl attention) {
    this.states = new StateCache(config, adapter == null ? null : adapter.config, false, attention);
    this.weights = weights;
    this.adapter = adapter;
    this.data = data;
    this.objective = objective;
    this.batch = Math.max(1, batch);
    this.comm = comm;
  }

  /** The objective evaluated. */
  Objective objective() {
    return objective;
  }

  /** Evaluates the split (collective: every rank calls it). */
  public Result run() throws IOException {
    long rows = data.validationRows();
    int n = comm.worldSize();
    long lo = rows * comm.rank() / n;
    long hi = rows * (comm.rank() + 1) / n;
    double sum = 0;
    long tokens = 0;
    double reg = 0;
    if (adapter != null && adapter.svd != null) {
      // PEFT's AdaLoRA adds the weighted orthogonality regulariser to every forward's loss
      adapter.syncSvd();
      reg = adapter.svd.orthRegWeight() * dev.danlu.train.lora.OrthReg.value(adapter);
    }
    for (long r = lo; r < hi; r += batch) {
      int b = (int) Math.min(batch, hi - r);
      long[] ids = new long[b];
      for (int k = 0; k < b; k++) {
        ids[k] = r + k;
      }
      Batch in = data.validationBatch(ids);
      LlamaState s = states.get(in.batch(), in.seq());
      double loss = objective.forward(weights, adapter, s, in);
      if (s.tokenCount() > 0) {
        sum += (loss + reg) * s.tokenCount();
        tokens += s.tokenCount();
      }
    }
    // (sum hi, sum lo, tokens) as floats: the lo word keeps the sum's double precision
    float sumHi = (float) sum;
    float[] v = {sumHi, (float) (sum - sumHi), (float) tokens};
    comm.allReduce(v, 0, 3, ReduceOp.SUM);
    long allTokens = Math.round(v[2]);
    return new Result(allTokens == 0 ? Double.NaN : ((double) v[0] + v[1]) / allTokens, allTokens);
  }
}
