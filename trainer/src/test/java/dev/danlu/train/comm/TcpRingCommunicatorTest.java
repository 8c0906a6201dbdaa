package dev.danlu.train.comm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Real sockets on 127.0.0.1, ranks as threads. */
class TcpRingCommunicatorTest {
  private static final byte[] SECRET = "job-secret-for-tests".getBytes(StandardCharsets.UTF_8);

  /** Tiny slices (64 B = 16 floats) so even small buffers exercise the multi-slice pipeline. */
  private static final TcpRingOptions SMALL_SLICES =
      TcpRingOptions.defaults()
          .withSliceBytes(64)
          .withConnectTimeoutMillis(20_000)
          .withOpTimeoutMillis(20_000);

  @Test
  void collectivesMatchDoubleReferenceForOneToFourRanks() throws Exception {
    for (int n = 1; n <= 4; n++) {
      List<TcpRingCommunicator> ring = RankThreads.tcpRing(n, SECRET, SMALL_SLICES);
      try {
        // sizes not divisible by n, smaller than n, and spanning many slices
        CollectiveContract.check(ring, new int[] {0, 1, 3, 17, 1001, 4099});
      } finally {
        ring.forEach(TcpRingCommunicator::close);
      }
    }
  }

  @Test
  void byteBufferCollectivesMatchReferenceAndArrayPathForOneToFourRanks() throws Exception {
    for (int n = 1; n <= 4; n++) {
      List<TcpRingCommunicator> ring = RankThreads.tcpRing(n, SECRET, SMALL_SLICES);
      try {
        // direct buffers take the zero-copy path; heap buffers go through an array
        ByteBufferContract.check(ring, new int[] {0, 1, 3, 17, 1001, 4099, 9001}, true);
        ByteBufferContract.check(ring, new int[] {0, 5, 1001}, false);
      } finally {
        ring.forEach(TcpRingCommunicator::close);
      }
    }
  }

  @Test
  void byteBufferArgumentsAreCheckedBeforeAnythingIsSent() throws Exception {
    TcpRingCommunicator c = RankThreads.tcpRing(1, SECRET, SMALL_SLICES).get(0);
    try {
      java.nio.ByteBuffer b = java.nio.ByteBuffer.allocateDirect(40); // 10 floats
      IndexOutOfBoundsException e =
          assertThrows(IndexOutOfBoundsException.class, () -> c.allReduce(b, 8, 3, ReduceOp.SUM));
      assertTrue(e.getMessage().contains("outside a buffer of 10 floats"), e.getMessage());
      assertThrows(
          IllegalArgumentException.class, () -> c.allGather(b.asReadOnlyBuffer(), 0, 2, 2));
      assertThrows(IllegalArgumentException.class, () -> c.reduceScatter(b, 0, 3, 2));
      assertThrows(
          IndexOutOfBoundsException.class,
          () -> c.broadcast(java.nio.ByteBuffer.allocate(8), 1, 2, 0)); // heap: same checks
    } finally {
      c.close();
    }
  }

  @Test
  void directAllReduceAcrossManyTilesAndDefaultSlicesEqualsArrayPath() throws Exception {
    // 300,007 floats: one slice per chunk (below the 1 MB minimum); 3,300,001: chunks of 1.1 M
    // floats in four uneven quarter-chunk slices, between the 1 MB floor and the 4 MB default cap
    List<TcpRingCommunicator> ring = RankThreads.tcpRing(3, SECRET, TcpRingOptions.defaults());
    try {
      ByteBufferContract.check(ring, new int[] {300_007, 3_300_001}, true);
    } finally {
      ring.forEach(TcpRingCommunicator::close);
    }
  }

  @Test
  void resultsAreBitIdenticalAcrossRanksAndRepeatsWithDefaultSlices() throws Exception {
    int n = 3;
    int size = 1_000_003; // several 1 MB slices per chunk
    List<TcpRingCommunicator> ring = RankThreads.tcpRing(n, SECRET, TcpRingOptions.defaults());
    try {
      List<float[]> first = allReduceOnce(ring, size);
      List<float[]> second = allReduceOnce(ring, size);
      for (int r = 0; r < n; r++) {
        assertArrayEquals(first.get(0), first.get(r), "rank " + r + " differs from rank 0");
        assertArrayEquals(first.get(r), second.get(r), "rank " + r + " not reproducible");
      }
    } finally {
      ring.forEach(TcpRingCommunicator::close);
    }
  }

  private static List<float[]> allReduceOnce(List<TcpRingCommunicator> ring, int size)
      throws Exception {
    return RankThreads.run(
        ring.size(),
        r -> {
          float[] b = new float[size];
          for (int i = 0; i < size; i++) {
            b[i] = CollectiveContract.input(r, i);
          }
          ring.get(r).allReduce(b, 0, size, ReduceOp.SUM);
          return b;
        });
  }

  @Test
  void peerThatNeverConnectsIsNamedWithinTheTimeout() throws Exception {
    RingListener l0 = RingListener.bind("127.0.0.1", 0);
    RingListener ghost = RingListener.bind("127.0.0.1", 0); // a port nobody will listen on
    String ghostAddr = ghost.address();
    ghost.close();
    long t0 = System.nanoTime();
    CommTimeoutException e =
        assertThrows(
            CommTimeoutException.class,
            () ->
                l0.join(
                    0,
                    List.of(l0.address(), ghostAddr),
                    SECRET,
                    SMALL_SLICES.withConnectTimeoutMillis(1500)));
    long ms = (System.nanoTime() - t0) / 1_000_000;
    assertTrue(ms >= 1400 && ms < 6000, "took " + ms + " ms");
    assertTrue(
        e.getMessage().contains("rank 1") && e.getMessage().contains(ghostAddr), e.getMessage());
  }

  @Test
  void stalledPeerInACollectiveIsNamed() throws Exception {
    List<TcpRingCommunicator> ring =
        RankThreads.tcpRing(2, SECRET, SMALL_SLICES.withOpTimeoutMillis(500));
    try {
      // rank 1 never enters the collective
      CommTimeoutException e =
          assertThrows(
              CommTimeoutException.class,
              () -> ring.get(0).allReduce(new float[100], 0, 100, ReduceOp.SUM));
      assertTrue(e.getMessage().contains("rank 1 (127.0.0.1:"), e.getMessage());
    } finally {
      ring.forEach(TcpRingCommunicator::close);
    }
  }

  @Test
  void stalledPeerInAControlMessageIsNamedAndTheRingRefusesFurtherWork() throws Exception {
    List<TcpRingCommunicator> ring =
        RankThreads.tcpRing(2, SECRET, SMALL_SLICES.withOpTimeoutMillis(500));
    try {
      long t0 = System.nanoTime();
      CommTimeoutException e = assertThrows(CommTimeoutException.class, ring.get(0)::barrier);
      long ms = (System.nanoTime() - t0) / 1_000_000;
      assertTrue(ms >= 450 && ms < 5_000, "took " + ms + " ms");
      assertTrue(
          e.getMessage().contains("control message from rank 1 (127.0.0.1:"), e.getMessage());
      // the stream positions no longer agree: later calls fail at once, saying why
      CommException again =
          assertThrows(
              CommException.class, () -> ring.get(0).allReduce(new float[10], 0, 10, ReduceOp.SUM));
      assertTrue(
          again
              .getMessage()
              .contains("after an earlier failure (a collective timed out waiting" + " for rank 1"),
          again.getMessage());
    } finally {
      ring.forEach(TcpRingCommunicator::close);
    }
  }

  @Test
  void interruptingOrClosingEndsABlockedCollectiveAtOnce() throws Exception {
    for (boolean interrupt : new boolean[] {true, false}) {
      List<TcpRingCommunicator> ring =
          RankThreads.tcpRing(2, SECRET, SMALL_SLICES.withOpTimeoutMillis(60_000));
      try {
        CompletableFuture<Throwable> failure = new CompletableFuture<>();
        Thread t =
            new Thread(
                () -> {
                  try {
                    ring.get(0).allReduce(new float[1000], 0, 1000, ReduceOp.SUM);
                    failure.complete(null);
                  } catch (Throwable x) {
                    failure.complete(x);
                  }
                });
        t.start();
        Thread.sleep(300); // rank 0 is now blocked reading from rank 1, which never joins
        long t0 = System.nanoTime();
        if (interrupt) {
          t.interrupt();
        } else {
          ring.get(0).close();
        }
        Throwable x = failure.get(10, TimeUnit.SECONDS);
        // (on a slow machine the call may only start after the interrupt or close: the same errors)
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms < 5_000, "took " + ms + " ms");
        CommException e = assertInstanceOf(CommException.class, x);
        assertTrue(
            interrupt
                ? e.getMessage().contains("interrupted in a collective")
                : e.getMessage().contains("closed mid-collective")
                    || e.getMessage().contains("communicator is closed"),
            e.getMessage());
        t.join(5_000);
        // and nothing more runs on the ring: its streams no longer line up, or it is closed
        CommException after = assertThrows(CommException.class, ring.get(0)::barrier);
        assertTrue(
            after
                .getMessage()
                .contains(interrupt ? "after an earlier failure" : "communicator is closed"),
            after.getMessage());
      } finally {
        ring.forEach(TcpRingCommunicator::close);
      }
    }
  }

  @Test
  void aFailedSendEndsTheReceiveWithoutWaitingForTheTimeout() throws Exception {
    List<TcpRingCommunicator> ring =
        RankThreads.tcpRing(3, SECRET, TcpRingOptions.defaults().withOpTimeoutMillis(60_000));
    try {
      ring.get(1).close(); // rank 0's successor is gone; its predecessor (rank 2) is silent
      int n = 8 << 20; // 32 MB: more than the socket buffers hold, so a write must fail
      long t0 = System.nanoTime();
      CommException e =
          assertThrows(
              CommException.class, () -> ring.get(0).allReduce(new float[n], 0, n, ReduceOp.SUM));
      long ms = (System.nanoTime() - t0) / 1_000_000;
      assertTrue(ms < 10_000, "took " + ms + " ms");
      assertFalse(e instanceof CommTimeoutException, e.toString());
      assertTrue(e.getMessage().contains("sending to rank 1 (127.0.0.1:"), e.getMessage());
      CommException after = assertThrows(CommException.class, ring.get(0)::barrier);
      assertTrue(
          after.getMessage().contains("after an earlier failure (sending to rank 1"),
          after.getMessage());
    } finally {
      ring.forEach(TcpRingCommunicator::close);
    }
  }

  @Test
  void strangersAreRejectedAndTheRingStillForms() throws Exception {
    List<RingListener> ls =
        List.of(RingListener.bind("127.0.0.1", 0), RingListener.bind("127.0.0.1", 0));
    List<String> addrs = List.of(ls.get(0).address(), ls.get(1).address());
    CompletableFuture<TcpRingCommunicator> r0 =
        CompletableFuture.supplyAsync(() -> ls.get(0).join(0, addrs, SECRET, SMALL_SLICES));
    InetSocketAddress target = TcpRingCommunicator.parse(addrs.get(0));
    // 1) a stranger with the wrong secret, claiming to be rank 1
    try (SocketChannel s = SocketChannel.open(target)) {
      s.configureBlocking(false);
      byte[] wrong = "not-the-secret".getBytes(StandardCharsets.UTF_8);
      long deadline = System.nanoTime() + 5_000_000_000L;
      assertThrows(
          PeerAuth.AuthException.class,
          () -> PeerAuth.connectSide(s, wrong, 1, "rank 0", deadline));
    }
    // 2) a silent stranger that connects and never speaks (must not block the real peer)
    SocketChannel silent = SocketChannel.open(target);
    try {
      TcpRingCommunicator c1 = ls.get(1).join(1, addrs, SECRET, SMALL_SLICES);
      TcpRingCommunicator c0 = r0.get(20, TimeUnit.SECONDS);
      List<TcpRingCommunicator> ring = new ArrayList<>(List.of(c0, c1));
      try {
        CollectiveContract.check(ring, new int[] {33});
      } finally {
        ring.forEach(TcpRingCommunicator::close);
      }
    } finally {
      silent.close();
    }
  }

  @Test
  void masterRendezvousExchangesAddressesInRankOrder() throws Exception {
    int n = 3;
    RingListener probe = RingListener.bind("127.0.0.1", 0);
    int port = TcpRingCommunicator.parse(probe.address()).getPort();
    probe.close();
    List<List<String>> got =
        RankThreads.run(
            n,
            r ->
                new MasterRendezvous(r, n, "127.0.0.1", port, SECRET, 20_000)
                    .allGather("addr-of-" + r));
    for (List<String> g : got) {
      assertEquals(List.of("addr-of-0", "addr-of-1", "addr-of-2"), g);
    }
  }

  @Test
  void masterRendezvousRejectsAStrangerAndCompletes() throws Exception {
    int n = 2;
    RingListener probe = RingListener.bind("127.0.0.1", 0);
    int port = TcpRingCommunicator.parse(probe.address()).getPort();
    probe.close();
    CompletableFuture<List<String>> master =
        CompletableFuture.supplyAsync(
            () -> new MasterRendezvous(0, n, "127.0.0.1", port, SECRET, 20_000).allGather("a0"));
    byte[] wrong = "wrong".getBytes(StandardCharsets.UTF_8);
    // the stranger retries until the master listens, then must be refused
    assertThrows(
        PeerAuth.AuthException.class,
        () -> new MasterRendezvous(1, n, "127.0.0.1", port, wrong, 20_000).allGather("evil"));
    List<String> got =
        new MasterRendezvous(1, n, "127.0.0.1", port, SECRET, 20_000).allGather("a1");
    assertEquals(List.of("a0", "a1"), got);
    assertEquals(List.of("a0", "a1"), master.get(20, TimeUnit.SECONDS));
  }

  @Test
  void launcherHeldMasterServesEveryRankIncludingZeroRoundAfterRound() throws Exception {
    int n = 3;
    try (MasterRendezvous.Server master = MasterRendezvous.Server.start("127.0.0.1", n, SECRET)) {
      int port = master.port();
      // a stranger holding no secret is dropped; the round goes on
      assertThrows(
          PeerAuth.AuthException.class,
          () ->
              new MasterRendezvous(
                      0,
                      n,
                      "127.0.0.1",
                      port,
                      "wrong".getBytes(StandardCharsets.UTF_8),
                      20_000,
                      false)
                  .allGather("evil"));
      List<List<String>> got =
          RankThreads.run(
              n,
              r -> {
                MasterRendezvous rdv =
                    new MasterRendezvous(r, n, "127.0.0.1", port, SECRET, 20_000, false);
                List<String> first = rdv.allGather("a" + r);
                List<String> second = rdv.allGather("b" + r); // e.g. the NCCL id after the ring
                return List.of(String.join(",", first), String.join(",", second));
              });
      for (List<String> g : got) {
        assertEquals(List.of("a0,a1,a2", "b0,b1,b2"), g);
      }
      // and a ring forms through it
      List<Float> sums =
          RankThreads.run(
              n,
              r -> {
                try (TcpRingCommunicator c =
                    TcpRingCommunicator.create(
                        r,
                        "127.0.0.1",
                        SECRET,
                        new MasterRendezvous(r, n, "127.0.0.1", port, SECRET, 20_000, false),
                        TcpRingOptions.defaults())) {
                  float[] v = {r + 1};
                  c.allReduce(v, 0, 1, ReduceOp.SUM);
                  return v[0];
                }
              });
      assertEquals(List.of(6f, 6f, 6f), sums);
      assertNull(master.failure());
    }
  }

  @Test
  void workersFindTheLauncherMasterThroughTheEnvironment() {
    Map<String, String> env =
        Map.of(
            MasterRendezvous.ENV_RANK, "0",
            MasterRendezvous.ENV_WORLD_SIZE, "2",
            MasterRendezvous.ENV_MASTER_ADDR, "127.0.0.1",
            MasterRendezvous.ENV_MASTER_PORT, "1",
            MasterRendezvous.ENV_JOB_SECRET, "s",
            MasterRendezvous.ENV_MASTER_IS_LAUNCHER, "1");
    MasterRendezvous rdv = MasterRendezvous.fromEnv(env, 300);
    // rank 0 registers (and times out reaching port 1) instead of binding port 1 as the master
    CommTimeoutException e = assertThrows(CommTimeoutException.class, () -> rdv.allGather("x"));
    assertTrue(e.getMessage().contains("could not reach the rendezvous master"), e.getMessage());
  }
}
