package dev.danlu.launch.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.launch.JobSecret;
import dev.danlu.launch.ProgressReporter;
import dev.danlu.launch.RankContext;
import dev.danlu.train.comm.CommException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class ListenerRendezvousTest {
  private static List<ServerSocket> listeners(int n) throws Exception {
    List<ServerSocket> l = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      l.add(new ServerSocket(0, 64, InetAddress.getLoopbackAddress()));
    }
    return l;
  }

  private static RankContext ctx(int rank, List<ServerSocket> ls, byte[] secret) {
    List<String> peers = new ArrayList<>();
    for (ServerSocket s : ls) {
      peers.add("127.0.0.1:" + s.getLocalPort());
    }
    return new RankContext(
        rank,
        ls.size(),
        0,
        peers,
        secret,
        List.of(),
        "",
        "test",
        List.of(),
        ProgressReporter.NONE,
        ls.get(rank));
  }

  @Test
  void everyRankLearnsEveryonesStringDespiteAStranger() throws Exception {
    int w = 3;
    List<ServerSocket> ls = listeners(w);
    byte[] secret = JobSecret.generate();
    ExecutorService pool = Executors.newFixedThreadPool(w);
    // a stranger writes a well-formed but unauthenticated message to rank 1 before the ranks start:
    // it must be dropped, not counted
    try (Socket stranger = new Socket(InetAddress.getLoopbackAddress(), ls.get(1).getLocalPort())) {
      OutputStream out = stranger.getOutputStream();
      out.write(new byte[] {(byte) 0xDA, 0x1E, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 'x', 'y', 'z'});
      out.write(new byte[32]);
      out.flush();
      List<Future<List<String>>> f = new ArrayList<>();
      for (int r = 0; r < w; r++) {
        RankContext c = ctx(r, ls, secret);
        String mine = "ring-of-" + r;
        f.add(pool.submit(() -> new ListenerRendezvous(c).allGather(mine)));
      }
      for (int r = 0; r < w; r++) {
        assertEquals(
            List.of("ring-of-0", "ring-of-1", "ring-of-2"), f.get(r).get(60, TimeUnit.SECONDS));
      }
    } finally {
      pool.shutdownNow();
      for (ServerSocket s : ls) {
        s.close();
      }
    }
  }

  @Test
  void aPeerWithAnotherSecretIsNeverAccepted() throws Exception {
    List<ServerSocket> ls = listeners(2);
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      // rank 1 belongs to another job: its message fails authentication at rank 0
      RankContext intruder = ctx(1, ls, JobSecret.generate());
      pool.submit(() -> new ListenerRendezvous(intruder).allGather("intruder"));
      RankContext c = ctx(0, ls, JobSecret.generate());
      Future<List<String>> mine = pool.submit(() -> new ListenerRendezvous(c).allGather("me"));
      Thread.sleep(1500);
      assertFalse(mine.isDone(), "rank 0 must keep waiting for an authentic rank 1");
      ls.get(0).close(); // ends the wait with an error naming the rendezvous
      ExecutionException e =
          assertThrows(ExecutionException.class, () -> mine.get(30, TimeUnit.SECONDS));
      assertTrue(e.getCause() instanceof CommException, e.toString());
      assertTrue(e.getCause().getMessage().contains("rendezvous"), e.getCause().getMessage());
    } finally {
      pool.shutdownNow();
      for (ServerSocket s : ls) {
        s.close();
      }
    }
  }
}
