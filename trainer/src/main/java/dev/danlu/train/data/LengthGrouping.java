package dev.danlu.train.data;

import java.io.IOException;
import java.util.Arrays;
import java.util.Comparator;

/**
 * {@code group_by_length} (Hugging Face's LengthGroupedSampler, done by global ids): the epoch's
 * {@link GlobalOrder} is cut into megabatches of {@value #MEGABATCH} global batches, each sorted by
 * example length (longest first, ties by row id), then cut into global batches again. A micro-batch
 * then holds examples of similar length and pads little. The rows of step {@code s} still depend
 * only on (seed, rows, global batch, lengths, s) — not on the world size — so N ranks = 1 rank and
 * resume hold as with {@link BatchPlan}.
 */
public final class LengthGrouping {
  /** Global batches per megabatch (HF's megabatch_mult). */
  public static final int MEGABATCH = 50;

  /** A row's length in tokens. */
  @FunctionalInterface
  public interface Lengths {
    int length(long row) throws IOException;
  }

  private final BatchPlan plan;
  private final Lengths lengths;
  private long cachedEpoch = -1;
  private long cachedMegabatch = -1;
  private long[] sorted;

  public LengthGrouping(BatchPlan plan, Lengths lengths) {
    this.plan = plan;
    this.lengths = lengths;
  }

  /** As {@link BatchPlan#rowsFor}, from the length-sorted megabatch the step falls in. */
  public long[] rowsFor(long step, int rank, int micro) throws IOException {
    long g = plan.globalBatch();
    long perEpoch = plan.stepsPerEpoch();
    int epoch = plan.epochOf(step);
    long inEpoch = step % perEpoch;
    long mb = inEpoch / MEGABATCH;
    if (epoch != cachedEpoch || mb != cachedMegabatch) {
      sorted = megabatch(epoch, mb, g, perEpoch);
      cachedEpoch = epoch;
      cachedMegabatch = mb;
    }
    int first =
        Math.toIntExact(
            (inEpoch - mb * MEGABATCH) * g
                + ((long) rank * plan.accumulationSteps() + micro) * plan.perDeviceBatch());
    return Arrays.copyOfRange(sorted, first, first + plan.perDeviceBatch());
  }

  private long[] megabatch(int epoch, long mb, long g, long perEpoch) throws IOException {
    GlobalOrder order = new GlobalOrder(plan.seed(), epoch, plan.rows());
    long from = mb * MEGABATCH * g;
    long to = Math.min(mb * MEGABATCH + MEGABATCH, perEpoch) * g;
    int n = Math.toIntExact(to - from);
    long[][] rowLen = new long[n][];
    for (int i = 0; i < n; i++) {
      long row = order.rowAt(from + i);
      rowLen[i] = new long[] {row, lengths.length(row)};
    }
    Arrays.sort(rowLen, Comparator.<long[]>comparingLong(r -> -r[1]).thenComparingLong(r -> r[0]));
    long[] out = new long[n];
    for (int i = 0; i < n; i++) {
      out[i] = rowLen[i][0];
    }
    return out;
  }
}
