package dev.danlu.train.model;

/**
 * One micro-batch, row-major [batch, seq] (HF's input_ids / attention_mask / labels).
 *
 * @param attentionMask 1 = real token, 0 = padding; null = all real
 * @param labels next-token targets before HF's shift (labels[t+1] is the target of position t);
 *     -100 = ignored; null = no loss (inference)
 * @param sampleIds global index of each batch row's sample, which keys its LoRA dropout masks so
 *     that a sample gets the same mask whatever rank or micro-batch it lands in; null = 0..batch-1
 * @param step optimizer step, also part of the dropout key
 * @param train whether LoRA dropout is active
 * @param segmentIds for packed rows (several examples in one row): the example each token belongs
 *     to, a contiguous run per example; a token attends only to earlier tokens of its own example
 *     and rotary positions restart at 0 at each run, so a packed row computes what its examples
 *     compute apart. null = one sequence per row
 */
public record Batch(
    int batch,
    int seq,
    int[] inputIds,
    int[] attentionMask,
    int[] labels,
    long[] sampleIds,
    long step,
    boolean train,
    int[] segmentIds) {

  public Batch {
    int n = batch * seq;
    check("input_ids", inputIds, n);
    if (attentionMask != null) {
      check("attention_mask", attentionMask, n);
    }
    if (segmentIds != null) {
      check("segment_ids", segmentIds, n);
    }
    if (labels != null) {
      check("labels", labels, n);
    }
    if (sampleIds == null) {
      sampleIds = new long[batch];
      for (int b = 0; b < batch; b++) {
        sampleIds[b] = b;
      }
    } else if (sampleIds.length != batch) {
      throw new IllegalArgumentException(
          "sampleIds has " + sampleIds.length + " entries for a batch of " + batch);
    }
  }

  /** A batch of one sequence per row (no packing). */
  public Batch(
      int batch,
      int seq,
      int[] inputIds,
      int[] attentionMask,
      int[] labels,
      long[] sampleIds,
      long step,
      boolean train) {
    this(batch, seq, inputIds, attentionMask, labels, sampleIds, step, train, null);
  }

  /**
   * The rotary position of each token: its offset from the start of its segment (packed rows), or
   * null when every row is one sequence (position = index in the row).
   */
  public int[] positionIds() {
    if (segmentIds == null) {
      return null;
    }
    int[] pos = new int[batch * seq];
    for (int b = 0; b < batch; b++) {
      int start = b * seq;
      for (int t = 0; t < seq; t++) {
        int n = b * seq + t;
        if (t > 0 && segmentIds[n] != segmentIds[n - 1]) {
          start = n;
        }
        pos[n] = n - start;
      }
    }
    return pos;
  }

  /**
   * How many positions the causal-LM loss counts: labels[t+1] != -100 for t + 1 < seq in each row
   * (HF's shift). 0 for a batch without labels.
   */
  public int labelTokens() {
    if (labels == null) {
      return 0;
    }
    int count = 0;
    for (int b = 0; b < batch; b++) {
      for (int t = 1; t < seq; t++) {
        if (labels[b * seq + t] != -100) {
          count++;
        }
      }
    }
    return count;
  }

  /** An inference batch: no labels, no dropout. */
  public static Batch of(int batch, int seq, int[] inputIds, int[] attentionMask) {
    return new Batch(batch, seq, inputIds, attentionMask, null, null, 0, false);
  }

  private static void check(String what, int[] a, int n) {
    if (a == null || a.length != n) {
      throw new IllegalArgumentException(
          what + " must have batch*seq = " + n + " entries, got " + (a == null ? 0 : a.length));
    }
  }
}
