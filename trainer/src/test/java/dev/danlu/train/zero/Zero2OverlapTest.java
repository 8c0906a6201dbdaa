package dev.danlu.train.zero;

import static dev.danlu.train.zero.LeastSquaresProblem.GLOBAL_BATCH;
import static dev.danlu.train.zero.LeastSquaresProblem.TOTAL_STEPS;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.comm.CommException;
import dev.danlu.train.comm.Communicator;
import dev.danlu.train.comm.LocalCommunicator;
import dev.danlu.train.comm.RankThreads;
import dev.danlu.train.comm.TcpRingCommunicator;
import dev.danlu.train.comm.TcpRingOptions;
import dev.danlu.train.optim.DynamicLossScaler;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Gradients reduced region by region on the communication thread while "backward" still fills lower
 * regions ({@link Zero2Optimizer#gradientsReady}) give bit-identical parameters to the
 * reduce-scatter after backward, on the in-process backend and a real TCP ring, with the same bytes
 * on the wire; and a ring failure on that thread surfaces from {@code step}.
 *
 * <p>Bitwise holds on any CPU: no BLAS is involved, each element is summed in the ring's fixed rank
 * order ({@code dst + src}, see FloatSlicesTest) whichever thread sends it and when.
 */
class Zero2OverlapTest {
  private static final byte[] SECRET = "overlap-test".getBytes(StandardCharsets.UTF_8);
  private static final TcpRingOptions OPTS =
      TcpRingOptions.defaults()
          .withSliceBytes(32)
          .withConnectTimeoutMillis(20_000)
          .withOpTimeoutMillis(5_000);

  /** Parameters after training, and the bytes this rank sent (0 off TCP). */
  record Outcome(float[] params, long bytes) {}

  /**
   * Trains the least-squares problem; with {@code overlap}, each step's gradients land in the flat
   * buffer parameter by parameter from the last one down (as backward finishes them) and each is
   * announced at once, so reductions run while the next ones are still being written.
   */
  static Outcome train(Communicator comm, boolean overlap, int bucket) {
    return train(comm, overlap, bucket, false);
  }

  /** With {@code direct}, the gradients live in a direct buffer (the ring's zero-copy path). */
  static Outcome train(Communicator comm, boolean overlap, int bucket, boolean direct) {
    FlatParams flat =
        FlatParams.of(LeastSquaresProblem.initialParams(), comm.worldSize(), 4, direct);
    Zero2Optimizer opt =
        new Zero2Optimizer(
            comm,
            flat,
            LeastSquaresProblem.config(bucket),
            new DynamicLossScaler(LeastSquaresProblem.LOSS_SCALE, 2, 100, 2, 1e-10));
    int n = comm.worldSize();
    int perRank = GLOBAL_BATCH / n;
    long bytes0 = sent(comm);
    for (int step = 0; step < TOTAL_STEPS; step++) {
      float[] local = new float[flat.padded()];
      for (int j = 0; j < perRank; j++) {
        long sample = (long) step * GLOBAL_BATCH + comm.rank() * perRank + j;
        LeastSquaresProblem.addSampleGrad(
            flat.params(), local, sample, (float) opt.scaler().scale());
      }
      if (overlap) {
        List<FlatParams.Slot> slots = flat.slots();
        for (int k = slots.size() - 1; k >= 0; k--) {
          FlatParams.Slot s = slots.get(k);
          write(flat, local, s.offset(), s.length());
          opt.gradientsReady(s.offset());
        }
      } else {
        write(flat, local, 0, flat.padded());
      }
      assertTrue(!opt.step(GLOBAL_BATCH).skipped());
    }
    return new Outcome(flat.params().clone(), sent(comm) - bytes0);
  }

  private static void write(FlatParams flat, float[] src, int off, int len) {
    if (flat.directGrads()) {
      flat.gradFloats().put(off, src, off, len);
    } else {
      System.arraycopy(src, off, flat.grads(), off, len);
    }
  }

  private static long sent(Communicator c) {
    return c instanceof TcpRingCommunicator t ? t.bytesSent() : 0;
  }

  private static void assertOverlapIsInvisible(
      List<? extends Communicator> comms, int bucket, String what) throws Exception {
    int n = comms.size();
    List<Outcome[]> out =
        RankThreads.run(
            n,
            r ->
                new Outcome[] {
                  train(comms.get(r), false, bucket), train(comms.get(r), true, bucket)
                });
    float[] want = LeastSquaresProblem.reference(TOTAL_STEPS, Set.of());
    for (int r = 0; r < n; r++) {
      Outcome off = out.get(r)[0];
      Outcome on = out.get(r)[1];
      assertArrayEquals(off.params(), on.params(), what + " rank " + r + ": overlap changed bits");
      assertEquals(off.bytes(), on.bytes(), what + " rank " + r + ": bytes on the wire");
      if (comms.get(r) instanceof TcpRingCommunicator) {
        System.out.printf(
            "%s rank %d: %d bytes sent with overlap_comm off, %d with it on%n",
            what, r, off.bytes(), on.bytes());
      }
    }
    double rel =
        LeastSquaresProblem.relativeError(
            Arrays.copyOf(out.get(0)[1].params(), LeastSquaresProblem.total()), want);
    assertTrue(rel <= 1e-6, what + ": relative error vs plain AdamW " + rel);
  }

  @Test
  void overlapEqualsReduceAfterBackwardBitwiseOnLocalRanks() throws Exception {
    for (int n = 1; n <= 4; n++) {
      // bucket 5: regions are cut into several collectives, and buckets cut partitions
      assertOverlapIsInvisible(LocalCommunicator.group(n, 20_000), 5, "local N=" + n);
    }
  }

  @Test
  void overlapEqualsReduceAfterBackwardBitwiseAndInBytesOnTcpRing() throws Exception {
    for (int n = 2; n <= 3; n++) {
      List<TcpRingCommunicator> ring = RankThreads.tcpRing(n, SECRET, OPTS);
      try {
        assertOverlapIsInvisible(ring, 7, "tcp N=" + n);
      } finally {
        ring.forEach(TcpRingCommunicator::close);
      }
    }
  }

  /**
   * Gradients in a direct buffer take the ring's zero-copy path: same bits and bytes as the array,
   * with and without overlap.
   */
  @Test
  void directGradientsEqualArrayGradientsBitwiseOnTcpRing() throws Exception {
    int n = 3;
    List<TcpRingCommunicator> ring = RankThreads.tcpRing(n, SECRET, OPTS);
    try {
      List<Outcome[]> out =
          RankThreads.run(
              n,
              r ->
                  new Outcome[] {
                    train(ring.get(r), false, 7, false),
                    train(ring.get(r), false, 7, true),
                    train(ring.get(r), true, 7, true)
                  });
      for (int r = 0; r < n; r++) {
        Outcome[] o = out.get(r);
        assertArrayEquals(o[0].params(), o[1].params(), "rank " + r + ": direct, no overlap");
        assertArrayEquals(o[0].params(), o[2].params(), "rank " + r + ": direct with overlap");
        assertEquals(o[0].bytes(), o[1].bytes());
        assertEquals(o[0].bytes(), o[2].bytes());
      }
    } finally {
      ring.forEach(TcpRingCommunicator::close);
    }
  }

  @Test
  void regionsMustMoveDownTheBuffer() {
    LocalCommunicator c = LocalCommunicator.group(1).get(0);
    FlatParams flat = FlatParams.of(LeastSquaresProblem.initialParams(), 1, 4);
    Zero2Optimizer opt =
        new Zero2Optimizer(c, flat, LeastSquaresProblem.config(8), DynamicLossScaler.disabled());
    opt.gradientsReady(40);
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> opt.gradientsReady(41));
    assertTrue(e.getMessage().contains("must move down from 40"), e.getMessage());
  }

  /**
   * Rank 1 leaves the ring; rank 0's background reduce-scatter fails, and its training step throws
   * a CommException naming the thread and the peer, well within the op timeout (no hang).
   */
  @Test
  void ringFailureOnTheCommunicationThreadSurfacesFromStep() throws Exception {
    List<TcpRingCommunicator> ring = RankThreads.tcpRing(2, SECRET, OPTS);
    try {
      ring.get(1).close();
      TcpRingCommunicator c = ring.get(0);
      FlatParams flat = FlatParams.of(LeastSquaresProblem.initialParams(), 2, 4);
      Zero2Optimizer opt =
          new Zero2Optimizer(c, flat, LeastSquaresProblem.config(3), DynamicLossScaler.disabled());
      Arrays.fill(flat.grads(), 1f);
      List<FlatParams.Slot> slots = new ArrayList<>(flat.slots());
      CommException e =
          assertTimeoutPreemptively(
              Duration.ofSeconds(30),
              () ->
                  assertThrows(
                      CommException.class,
                      () -> {
                        for (int k = slots.size() - 1; k >= 0; k--) {
                          opt.gradientsReady(slots.get(k).offset());
                        }
                        opt.step(1);
                      }));
      assertTrue(e.getMessage().contains("on the communication thread"), e.getMessage());
      assertTrue(e.getMessage().contains("rank 1"), e.getMessage());
      assertTrue(e.getCause() instanceof CommException, String.valueOf(e.getCause()));
    } finally {
      ring.forEach(TcpRingCommunicator::close);
    }
  }

  /**
   * Backward throws after the first region was handed over (the peer never joins the collective):
   * close() stops the communication thread at once instead of leaving it parked on the group.
   */
  @Test
  void closeStopsAnAbandonedOverlapThread() {
    List<LocalCommunicator> group = LocalCommunicator.group(2, 60_000);
    FlatParams flat = FlatParams.of(LeastSquaresProblem.initialParams(), 2, 4);
    Zero2Optimizer opt =
        new Zero2Optimizer(
            group.get(0), flat, LeastSquaresProblem.config(3), DynamicLossScaler.disabled());
    opt.gradientsReady(flat.slots().get(flat.slots().size() - 1).offset());
    assertTrue(opt.reducing(), "the region's reduce waits for rank 1 on its own thread");
    assertTimeoutPreemptively(Duration.ofSeconds(15), opt::close);
    assertFalse(opt.reducing(), "close() left the communication thread running");
    opt.close(); // idempotent
  }
}
