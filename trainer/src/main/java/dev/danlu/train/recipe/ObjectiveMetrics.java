package dev.danlu.train.recipe;

import dev.danlu.train.comm.Communicator;
import dev.danlu.train.comm.ReduceOp;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;

/**
 * An {@link Objective} that measures more than its loss (the preference objectives: TRL's {@code
 * rewards/*} and {@code logps/*}): it sums each metric over the sequences or pairs it scores, apart
 * for training and evaluation forwards ({@code Batch.train()}), and the loop all-reduces and logs
 * the means at logging steps and after each evaluation, so N ranks log what 1 rank logs.
 */
public interface ObjectiveMetrics {
  /** The metric names, TRL's where it has one. */
  List<String> metricNames();

  /**
   * This rank's sums of each metric since the last call for the split, then how many items they sum
   * over (last element); resets the split's sums.
   */
  double[] drainMetrics(boolean train);

  /**
   * All-reduces the split's sums (collective: every rank calls it at the same point) and logs their
   * means on rank 0 as {@code <what>: name value ...}; returns the means (empty if nothing was
   * scored).
   */
  static double[] logMeans(
      Communicator comm, ObjectiveMetrics m, boolean train, String what, PrintStream log) {
    double[] sums = m.drainMetrics(train);
    // (hi, lo) float words per sum: the lo word keeps the double's precision through the
    // float all-reduce
    float[] v = new float[2 * sums.length];
    for (int i = 0; i < sums.length; i++) {
      v[2 * i] = (float) sums[i];
      v[2 * i + 1] = (float) (sums[i] - v[2 * i]);
    }
    comm.allReduce(v, 0, v.length, ReduceOp.SUM);
    int k = sums.length - 1;
    double count = (double) v[2 * k] + v[2 * k + 1];
    if (count <= 0) {
      return new double[0];
    }
    double[] means = new double[k];
    StringBuilder sb = new StringBuilder("[rank 0] ").append(what).append(':');
    String prefix = train ? "" : "eval_";
    for (int i = 0; i < k; i++) {
      means[i] = ((double) v[2 * i] + v[2 * i + 1]) / count;
      sb.append(String.format(Locale.ROOT, " %s%s %.5f", prefix, m.metricNames().get(i), means[i]));
    }
    if (comm.rank() == 0) {
      log.println(sb.append(String.format(Locale.ROOT, " (%d)", Math.round(count))));
    }
    return means;
  }
}
