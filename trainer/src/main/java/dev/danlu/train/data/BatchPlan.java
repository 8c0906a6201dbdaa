package dev.danlu.train.data;

/**
 * Which dataset rows each rank trains on at each micro-step. A global batch of {@code G =
 * per_device_train_batch_size × gradient_accumulation_steps × world_size} rows is taken per
 * optimizer step from the epoch's {@link GlobalOrder}; rank {@code r} takes the contiguous slice
 * {@code [r·G/N, (r+1)·G/N)} of it, one micro-batch after another.
 *
 * <p>Consequences, relied on by the equivalence tests and by resume: the rows of optimizer step
 * {@code s} depend only on (seed, rows, G, s), so any world size with the same global batch — 4
 * micro-batches on 1 rank or 1 on 4 ranks — sums gradients over the same rows, and resuming at step
 * {@code s} needs nothing but {@code s}. The last incomplete global batch of an epoch is dropped
 * (different rows each epoch, as the order is reshuffled): that is what makes every step's batch
 * complete on every world size.
 */
public record BatchPlan(
    long seed, long rows, int perDeviceBatch, int accumulationSteps, int worldSize) {

  public BatchPlan {
    if (perDeviceBatch < 1 || accumulationSteps < 1 || worldSize < 1) {
      throw new IllegalArgumentException(
          "batch, accumulation and world size must be ≥ 1: "
              + perDeviceBatch
              + ", "
              + accumulationSteps
              + ", "
              + worldSize);
    }
    if (rows < (long) perDeviceBatch * accumulationSteps * worldSize) {
      throw new IllegalArgumentException(
          "the dataset has "
              + rows
              + " rows, fewer than one global batch of "
              + (long) perDeviceBatch * accumulationSteps * worldSize
              + " (per_device_train_batch_size × gradient_accumulation_steps × world size):"
              + " use a smaller batch or more data");
    }
  }

  /** Rows per optimizer step, over all ranks. */
  public long globalBatch() {
    return (long) perDeviceBatch * accumulationSteps * worldSize;
  }

  /** Complete global batches per epoch. */
  public long stepsPerEpoch() {
    return rows / globalBatch();
  }

  /**
   * Total optimizer steps, as Hugging Face's Trainer computes them: {@code max_steps} when > 0,
   * else {@code ceil(num_train_epochs × steps per epoch)}.
   */
  public long totalSteps(int maxSteps, double numTrainEpochs) {
    return maxSteps > 0 ? maxSteps : (long) Math.ceil(numTrainEpochs * stepsPerEpoch());
  }

  /** The epoch an optimizer step (0-based) falls in. */
  public int epochOf(long step) {
    return Math.toIntExact(step / stepsPerEpoch());
  }

  /**
   * The rows rank {@code rank} trains on in micro-batch {@code micro} of optimizer step {@code
   * step} (both 0-based), in order.
   */
  public long[] rowsFor(long step, int rank, int micro) {
    if (rank < 0 || rank >= worldSize || micro < 0 || micro >= accumulationSteps || step < 0) {
      throw new IndexOutOfBoundsException(
          "step " + step + ", rank " + rank + ", micro " + micro + " outside the plan " + this);
    }
    GlobalOrder order = new GlobalOrder(seed, epochOf(step), rows);
    long first =
        (step % stepsPerEpoch()) * globalBatch()
            + ((long) rank * accumulationSteps + micro) * perDeviceBatch;
    long[] out = new long[perDeviceBatch];
    for (int k = 0; k < perDeviceBatch; k++) {
      out[k] = order.rowAt(first + k);
    }
    return out;
  }
}
