package dev.danlu.train.zero;

import dev.danlu.train.comm.CommException;
import dev.danlu.train.comm.Communicator;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * Reduces regions of the flat gradient buffer to their owners on a thread of its own while the
 * caller (backward) keeps computing: one instance per optimizer step. Each region is cut at the
 * ZeRO partition boundaries into a reduce-scatter-v ({@link Communicator#reduceScatterV}), so a
 * region that touches only two partitions still moves each element once. Direct gradients ({@link
 * FlatParams#directGrads()}) take the communicator's zero-copy path.
 *
 * <p>The communicator is used by this thread only between the first {@link #submit} and {@link
 * #finish}; the caller must not issue collectives in between (backward does not). A failure stops
 * the stream: later regions are skipped, the other ranks time out in their collective, and {@link
 * #finish} rethrows it on the training thread, naming the region.
 */
final class GradReduceStream {
  private static final int[] END = new int[0];

  private final Communicator comm;
  private final FlatParams flat;
  private final int partition;
  private final LinkedBlockingQueue<int[]> queue = new LinkedBlockingQueue<>();
  private final Thread thread;
  private volatile Throwable failure;
  private volatile String failedRegion;
  private long busyNanos;

  GradReduceStream(Communicator comm, FlatParams flat, int partition) {
    this.comm = comm;
    this.flat = flat;
    this.partition = partition;
    this.thread = new Thread(this::run, "danlu-grad-reduce-" + comm.rank());
    thread.setDaemon(true); // a training thread that dies must not be kept alive by this one
    thread.start();
  }

  /** Queues {@code grads[lo, hi)}, which must be final on every rank, for reduction. */
  void submit(int lo, int hi) {
    if (lo < hi) {
      queue.add(new int[] {lo, hi});
    }
  }

  /**
   * Waits until every submitted region is reduced; rethrows a failure of the communication thread.
   * Returns the nanoseconds that thread spent in collectives.
   */
  long finish() {
    queue.add(END);
    try {
      thread.join();
    } catch (InterruptedException e) {
      abort(10_000);
      Thread.currentThread().interrupt();
      throw new CommException("interrupted waiting for the gradient reduce-scatter", e);
    }
    Throwable t = failure;
    if (t != null) {
      throw new CommException(
          "rank "
              + comm.rank()
              + ": reduce-scatter of gradients "
              + failedRegion
              + " failed on the communication thread (overlap_comm): "
              + t.getMessage(),
          t);
    }
    return busyNanos;
  }

  /**
   * Stops the thread without waiting for queued regions (the step is being abandoned: backward or
   * the caller failed). Interrupting a collective closes its channel, which is what a failed
   * attempt wants: the communicator is closed next anyway. Waits at most {@code millis}.
   */
  void abort(long millis) {
    queue.clear();
    queue.add(END);
    thread.interrupt();
    try {
      thread.join(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  boolean alive() {
    return thread.isAlive();
  }

  private void run() {
    while (true) {
      int[] r;
      try {
        r = queue.take();
      } catch (InterruptedException e) {
        failure = e;
        failedRegion = "(interrupted)";
        return;
      }
      if (r == END) {
        return;
      }
      if (failure != null) {
        continue; // the ring is broken; finish() reports the first failure
      }
      try {
        long t0 = System.nanoTime();
        reduce(r[0], r[1]);
        busyNanos += System.nanoTime() - t0;
      } catch (Throwable t) { // incl. Errors: finish() must see why, not wait forever
        failedRegion = "[" + r[0] + ", " + r[1] + ")";
        failure = t;
      }
    }
  }

  private void reduce(int lo, int hi) {
    int world = comm.worldSize();
    int[] offsets = new int[world];
    int[] counts = new int[world];
    for (int i = 0; i < world; i++) {
      int a = Math.max(lo, i * partition);
      int b = Math.min(hi, (i + 1) * partition);
      offsets[i] = Math.min(a, hi);
      counts[i] = Math.max(0, b - a);
    }
    if (flat.directGrads()) {
      comm.reduceScatterV(flat.gradBuffer(), offsets, counts); // zero-copy on the TCP ring
    } else {
      comm.reduceScatterV(flat.grads(), offsets, counts);
    }
  }
}
