package dev.danlu.train.zero;

import dev.danlu.train.comm.Communicator;
import dev.danlu.train.comm.ReduceOp;
import dev.danlu.train.optim.AdamW;
import dev.danlu.train.optim.DynamicLossScaler;
import dev.danlu.train.optim.LrSchedule;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * ZeRO stage 2 AdamW. The flat trainable buffer ({@link FlatParams}) is split into equal contiguous
 * partitions ({@link ShardInfo}); this rank keeps fp32 master weights and Adam's m and v for its
 * partition only (12 bytes per element, {@link #stateBytes()}), the parameters stay replicated.
 *
 * <p>One optimizer step, after the caller accumulated gradients of all its micro-batches into
 * {@link FlatParams#grads()} (scaled by the loss scale, not averaged):
 *
 * <ol>
 *   <li>reduce-scatter the gradients once, so each rank holds the global sum for its partition —
 *       DeepSpeed instead reduces on every micro-step. Either all at once here, in buckets (each a
 *       strided reduce-scatter of the same slice of every partition); or overlapped with the last
 *       micro-batch's backward: the caller announces each region as backward finishes it ({@link
 *       #gradientsReady}), a communication thread reduces it to its owners (a reduce-scatter-v),
 *       and this step only waits for the rest. Both move the same bytes; on the in-process and TCP
 *       backends they reduce every element in the same order and give bit-identical results (NCCL
 *       may choose different algorithms for its grouped reduces: equal to rounding there);
 *   <li>overflow check on the partition, all-reduce MAX: on overflow every rank skips the update
 *       and the LR-schedule step and lowers the loss scale;
 *   <li>global gradient norm from an all-reduce SUM of partition squared norms; the clip factor is
 *       folded together with unscaling and averaging into one multiplier (as DeepSpeed does);
 *   <li>AdamW on the partition (decay per parameter, HF's rule);
 *   <li>all-gather the updated partitions into the replicated parameters; zero the gradients.
 * </ol>
 */
public final class Zero2Optimizer implements AutoCloseable {

  /**
   * @param learningRate peak learning rate (the schedule multiplies it)
   * @param weightDecay applied to parameters whose {@link FlatParams.Slot#decay()} is true
   * @param maxGradNorm clip threshold on the global L2 norm; 0 or less disables clipping
   * @param bucketFloats elements per rank in one reduce-scatter bucket
   */
  public record Config(
      AdamW adam,
      double learningRate,
      double weightDecay,
      double maxGradNorm,
      int bucketFloats,
      LrSchedule schedule) {
    public Config {
      if (bucketFloats < 1) {
        throw new IllegalArgumentException("bucketFloats must be >= 1");
      }
    }
  }

  /** What happened in one step, for logging. {@code gradNorm} is the unclipped global norm. */
  public record StepResult(
      boolean skipped, double gradNorm, double lr, double lossScale, long appliedSteps) {}

  private final Communicator comm;
  private final FlatParams flat;
  private final Config cfg;
  private final DynamicLossScaler scaler;
  private final ShardInfo shard;
  private final float[] master; // (partition) fp32 master weights
  private float[] gradientTap; // null, or (padded) the applied gradient after each step
  private final float[] expAvg; // (partition) Adam m
  private final float[] expAvgSq; // (partition) Adam v
  private long appliedSteps;
  private int readyFrom; // grads [readyFrom, padded) were handed to the stream this step
  private GradReduceStream stream; // this step's overlapped reduction, or null
  private long lastCommNanos; // time step() spent on the gradient reduce-scatter, for benchmarks
  private long lastBackgroundNanos; // time the communication thread spent in collectives
  private long regionsDuringBackward;

  public Zero2Optimizer(Communicator comm, FlatParams flat, Config cfg, DynamicLossScaler scaler) {
    if (flat.padded() % comm.worldSize() != 0) {
      throw new IllegalArgumentException(
          "flat buffer of "
              + flat.padded()
              + " was laid out for another world size than "
              + comm.worldSize()
              + "; build FlatParams with the communicator's world size");
    }
    this.comm = comm;
    this.flat = flat;
    this.cfg = cfg;
    this.scaler = scaler;
    int size = flat.padded() / comm.worldSize();
    this.shard = new ShardInfo(comm.rank() * size, size);
    this.master = Arrays.copyOfRange(flat.params(), shard.offset(), shard.end());
    this.expAvg = new float[size];
    this.expAvgSq = new float[size];
    this.readyFrom = flat.padded();
  }

  /**
   * Declares {@code grads[from, previous from)} final on this rank — the first call of a step
   * covers {@code [from, padded)}, padding included — and starts reducing it in the background.
   * Call with decreasing {@code from}, as backward finishes the flat buffer from its end (every
   * rank the same sequence); {@link #step} reduces whatever was not announced. No other collective
   * may run on the communicator until {@code step}.
   */
  public void gradientsReady(int from) {
    regionsDuringBackward += handOver(from);
  }

  /**
   * Regions (bucket-sized pieces) handed to the communication thread by {@link #gradientsReady}
   * since this optimizer was built, i.e. reduced while backward was still running; the remainder
   * each {@link #step} reduces itself is not counted. Zero without overlap or with one rank.
   */
  public long regionsReducedDuringBackward() {
    return regionsDuringBackward;
  }

  private int handOver(int from) {
    if (from < 0 || from > readyFrom) {
      throw new IllegalArgumentException(
          "gradients announced from "
              + from
              + ", but regions must move down from "
              + readyFrom
              + " towards 0 (the flat buffer has "
              + flat.padded()
              + ")");
    }
    if (from == readyFrom) {
      return 0;
    }
    int pieces = 0;
    if (comm.worldSize() > 1) {
      if (stream == null) {
        stream = new GradReduceStream(comm, flat, shard.size());
      }
      // buckets bound what one collective stages (NCCL's device copy, the local backend's sums)
      int piece = (int) Math.min(Integer.MAX_VALUE, (long) cfg.bucketFloats() * comm.worldSize());
      for (int hi = readyFrom; hi > from; hi -= piece) {
        stream.submit(Math.max(from, hi - piece), hi);
        pieces++;
      }
    }
    readyFrom = from;
    return pieces;
  }

  /** Nanoseconds the last {@link #step} spent on the gradient reduce-scatter that it waited for. */
  public long lastCommNanos() {
    return lastCommNanos;
  }

  /**
   * Nanoseconds the communication thread spent in collectives during the last step (0 without
   * overlap): the reduce-scatter work that ran while backward was still computing, or was waited
   * for.
   */
  public long lastBackgroundNanos() {
    return lastBackgroundNanos;
  }

  public ShardInfo shard() {
    return shard;
  }

  public DynamicLossScaler scaler() {
    return scaler;
  }

  public long appliedSteps() {
    return appliedSteps;
  }

  /** Learning rate the next applied update will use. */
  public double currentLr() {
    return cfg.learningRate() * cfg.schedule().factor(appliedSteps);
  }

  /** Bytes of optimizer state this rank holds, summed from the actual array lengths. */
  public long stateBytes() {
    return 4L * ((long) master.length + expAvg.length + expAvgSq.length);
  }

  /**
   * Abandons a step whose overlapped reduction is still running (backward threw, or the run is
   * being torn down): stops the communication thread so a failed attempt leaves no thread behind
   * holding the communicator and the gradient buffer. A no-op between steps.
   */
  @Override
  public void close() {
    GradReduceStream s = stream;
    stream = null;
    readyFrom = flat.padded();
    if (s != null) {
      s.abort(10_000);
    }
  }

  /** True while an overlapped reduction of this step has a live communication thread. */
  boolean reducing() {
    return stream != null && stream.alive();
  }

  /**
   * Performs one optimizer step on the gradients accumulated since the last one.
   *
   * @param gradDivisor what the summed gradient is divided by to become the mean the loss defines
   *     (micro-batches per rank × world size for a per-micro-batch mean loss)
   */
  public StepResult step(double gradDivisor) {
    GradView g = new GradView(flat);
    int p = shard.size();
    long c0 = System.nanoTime();
    if (readyFrom < flat.padded()) {
      handOver(0);
      GradReduceStream s = stream;
      stream = null;
      readyFrom = flat.padded();
      lastBackgroundNanos = s != null ? s.finish() : 0;
    } else {
      lastBackgroundNanos = 0;
      for (int start = 0; start < p; start += cfg.bucketFloats()) {
        int chunk = Math.min(cfg.bucketFloats(), p - start);
        if (flat.directGrads()) {
          comm.reduceScatter(flat.gradBuffer(), start, chunk, p); // zero-copy on the TCP ring
        } else {
          comm.reduceScatter(flat.grads(), start, chunk, p);
        }
      }
    }
    lastCommNanos = System.nanoTime() - c0;

    double sq = 0;
    boolean overflow = false;
    for (int lo = shard.offset(); lo < shard.end(); lo += GradView.TILE) {
      int n = Math.min(GradView.TILE, shard.end() - lo);
      float[] a = g.tile(lo, n);
      int o = g.tileOffset(lo);
      for (int i = o; i < o + n; i++) {
        float x = a[i];
        overflow |= !Float.isFinite(x);
        sq += (double) x * x;
      }
    }
    float[] flag = {overflow ? 1f : 0f};
    comm.allReduce(flag, 0, 1, ReduceOp.MAX);
    double scale = scaler.scale();
    if (flag[0] > 0) {
      scaler.update(true);
      g.zero();
      return new StepResult(true, Double.NaN, currentLr(), scale, appliedSteps);
    }

    // The squared norm travels as a float pair (hi, lo) so the sum keeps ~double precision.
    float hi = (float) sq;
    float[] norm2 = {hi, (float) (sq - hi)};
    comm.allReduce(norm2, 0, 2, ReduceOp.SUM);
    double unscale = 1.0 / (scale * gradDivisor);
    double gradNorm = Math.sqrt((double) norm2[0] + norm2[1]) * unscale;
    double clip = 1.0;
    if (cfg.maxGradNorm() > 0) {
      // torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), applied only if < 1
      double coef = cfg.maxGradNorm() / (gradNorm + 1e-6);
      clip = Math.min(1.0, coef);
    }
    float gradScale = (float) (unscale * clip);

    double lr = currentLr();
    long t = appliedSteps + 1;
    for (FlatParams.Slot s : flat.slots()) {
      int lo = Math.max(s.offset(), shard.offset());
      int hiEnd = Math.min(s.offset() + s.length(), shard.end());
      double wd = s.decay() ? cfg.weightDecay() : 0.0;
      for (int a = lo; a < hiEnd; a += GradView.TILE) { // element-wise: tiling changes no bits
        int n = Math.min(GradView.TILE, hiEnd - a);
        cfg.adam()
            .update(
                master,
                expAvg,
                expAvgSq,
                a - shard.offset(),
                g.tile(a, n),
                g.tileOffset(a),
                gradScale,
                n,
                lr,
                wd,
                t);
      }
    }
    appliedSteps = t;
    scaler.update(false);
    if (gradientTap != null) {
      // the gradient the update used (unscaled, averaged, clipped), replicated on every rank
      for (int a = shard.offset(); a < shard.end(); a += GradView.TILE) {
        int n = Math.min(GradView.TILE, shard.end() - a);
        float[] tile = g.tile(a, n);
        int o = g.tileOffset(a);
        for (int i = 0; i < n; i++) {
          gradientTap[a + i] = tile[o + i] * gradScale;
        }
      }
      comm.allGather(gradientTap, 0, p);
    }

    float[] params = flat.params();
    System.arraycopy(master, 0, params, shard.offset(), p);
    comm.allGather(params, 0, p);
    g.zero();
    return new StepResult(false, gradNorm, lr, scale, appliedSteps);
  }

  /**
   * After every applied step, fills {@code full} (length {@link FlatParams#padded()}) with the
   * gradient that step applied, unscaled, averaged and clipped, on every rank (one all-gather):
   * AdaLoRA's rank allocator scores parameters with it. Skipped (overflow) steps leave it as it
   * was. Null turns it off.
   */
  public void tapGradients(float[] full) {
    if (full != null && full.length != flat.padded()) {
      throw new IllegalArgumentException(
          "gradient tap has " + full.length + " floats, the flat buffer " + flat.padded());
    }
    this.gradientTap = full;
  }

  /**
   * Takes this rank's partition of {@link FlatParams#params()} as the master weights again, after
   * the caller changed the replicated parameters identically on every rank (AdaLoRA's masks).
   */
  public void reloadMasterFromParams() {
    System.arraycopy(flat.params(), shard.offset(), master, 0, shard.size());
  }

  /** This rank's state, cut into per-parameter slices (see {@link OptimizerState}). */
  public OptimizerState exportState() {
    List<OptimizerState.Slice> slices = new ArrayList<>();
    for (FlatParams.Slot s : flat.slots()) {
      int lo = Math.max(s.offset(), shard.offset());
      int hi = Math.min(s.offset() + s.length(), shard.end());
      if (lo < hi) {
        int a = lo - shard.offset();
        int b = hi - shard.offset();
        slices.add(
            new OptimizerState.Slice(
                s.name(),
                lo - s.offset(),
                Arrays.copyOfRange(master, a, b),
                Arrays.copyOfRange(expAvg, a, b),
                Arrays.copyOfRange(expAvgSq, a, b)));
      }
    }
    return new OptimizerState(appliedSteps, scaler.state(), slices);
  }

  /**
   * Restores from the states of all ranks of a previous run, whatever its world size: copies every
   * slice overlapping this partition, checks that each element is covered exactly once, then
   * all-gathers the masters into the replicated parameters. Collective: call on every rank.
   */
  public void importState(Collection<OptimizerState> saved) {
    Map<String, FlatParams.Slot> byName = new HashMap<>();
    for (FlatParams.Slot s : flat.slots()) {
      byName.put(s.name(), s);
    }
    int[] covered = new int[shard.size()];
    Long steps = null;
    double[] scalerState = null;
    for (OptimizerState st : saved) {
      if (steps != null && steps != st.appliedSteps()) {
        throw new IllegalArgumentException(
            "optimizer states from different steps ("
                + steps
                + " vs "
                + st.appliedSteps()
                + "): mixed checkpoints");
      }
      steps = st.appliedSteps();
      scalerState = st.lossScaler();
      for (OptimizerState.Slice sl : st.slices()) {
        FlatParams.Slot slot = byName.get(sl.name());
        if (slot == null) {
          throw new IllegalArgumentException(
              "checkpoint has optimizer state for "
                  + sl.name()
                  + ", which this model does not train");
        }
        int n = sl.master().length;
        if (sl.start() < 0 || sl.start() + n > slot.length()) {
          throw new IllegalArgumentException(
              "checkpoint slice "
                  + sl.name()
                  + "["
                  + sl.start()
                  + ", +"
                  + n
                  + ") exceeds its length "
                  + slot.length()
                  + " in this model (different LoRA rank or vocabulary?)");
        }
        int gStart = slot.offset() + sl.start();
        int lo = Math.max(gStart, shard.offset());
        int hi = Math.min(gStart + n, shard.end());
        for (int gi = lo; gi < hi; gi++) {
          int src = gi - gStart;
          int dst = gi - shard.offset();
          master[dst] = sl.master()[src];
          expAvg[dst] = sl.expAvg()[src];
          expAvgSq[dst] = sl.expAvgSq()[src];
          covered[dst]++;
        }
      }
    }
    if (steps == null) {
      throw new IllegalArgumentException("no optimizer state to import");
    }
    for (FlatParams.Slot s : flat.slots()) {
      int lo = Math.max(s.offset(), shard.offset());
      int hi = Math.min(s.offset() + s.length(), shard.end());
      for (int gi = lo; gi < hi; gi++) {
        if (covered[gi - shard.offset()] != 1) {
          throw new IllegalArgumentException(
              "checkpoint covers element "
                  + (gi - s.offset())
                  + " of "
                  + s.name()
                  + " "
                  + covered[gi - shard.offset()]
                  + " times (expected once): incomplete or duplicated rank files");
        }
      }
    }
    appliedSteps = steps;
    scaler.restore(scalerState);
    float[] params = flat.params();
    System.arraycopy(master, 0, params, shard.offset(), shard.size());
    comm.allGather(params, 0, shard.size());
  }
}
