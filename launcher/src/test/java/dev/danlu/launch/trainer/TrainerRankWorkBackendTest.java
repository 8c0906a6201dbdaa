package dev.danlu.launch.trainer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.danlu.launch.JobSecret;
import dev.danlu.launch.ProgressReporter;
import dev.danlu.launch.RankContext;
import dev.danlu.train.comm.DdpBackend;
import dev.danlu.train.comm.NcclIdExchange;
import dev.danlu.train.tensor.Backend;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The Spark rank's side of ddp_backend on this CPU build: the NCCL unique id travels between real
 * ranks over the launcher's listener rendezvous (a made-up id, no CUDA call), the task's GPU comes
 * from Spark's assignment, and asking for NCCL fails the task at start-up saying what to do.
 */
class TrainerRankWorkBackendTest {
  private static RankContext ctx(
      int rank, List<ServerSocket> ls, byte[] secret, List<String> gpus, String yaml) {
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
        gpus,
        yaml,
        "test.yaml",
        List.of(),
        ProgressReporter.NONE,
        ls.get(rank));
  }

  @Test
  void ncclIdFromRankZeroReachesEveryRankOverTheListeners() throws Exception {
    int w = 3;
    List<ServerSocket> ls = new ArrayList<>();
    for (int i = 0; i < w; i++) {
      ls.add(new ServerSocket(0, 64, InetAddress.getLoopbackAddress()));
    }
    byte[] secret = JobSecret.generate();
    byte[] id = new byte[NcclIdExchange.ID_BYTES];
    new Random(9).nextBytes(id);
    ExecutorService pool = Executors.newFixedThreadPool(w);
    try {
      List<Future<byte[]>> got = new ArrayList<>();
      for (int r = 0; r < w; r++) {
        RankContext c = ctx(r, ls, secret, List.of(Integer.toString(r)), "");
        int rank = r;
        got.add(
            pool.submit(
                () ->
                    NcclIdExchange.exchange(
                        rank,
                        w,
                        "127.0.0.1",
                        "cuda:" + DdpBackend.sparkDevice(c.gpuAddresses()).getAsInt(),
                        new ListenerRendezvous(c),
                        id::clone)));
      }
      for (Future<byte[]> f : got) {
        assertArrayEquals(id, f.get(60, TimeUnit.SECONDS));
      }
    } finally {
      pool.shutdownNow();
      for (ServerSocket s : ls) {
        s.close();
      }
    }
  }

  @Test
  void autoOnTheCpuBuildIsTcpAndTwoGpusPerTaskAreRefused() {
    assumeTrue(Backend.loaded() == Backend.Kind.CPU, "a CPU-build case");
    assertEquals("tcp", TrainerRankWork.chooseBackend("auto", List.of("0")).kind());
    assertEquals("tcp", TrainerRankWork.chooseBackend("auto", List.of()).kind());
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () -> TrainerRankWork.chooseBackend("auto", List.of("0", "1")));
    assertTrue(e.getMessage().contains("spark.task.resource.gpu.amount=1"), e.getMessage());
    // an explicit tcp ignores the GPUs, however many the task was given
    assertEquals("tcp", TrainerRankWork.chooseBackend("tcp", List.of("0", "1")).kind());
  }

  @Test
  void ncclOnTheCpuBuildFailsTheTaskAtStartUpAndClosesItsListener() throws Exception {
    assumeTrue(Backend.loaded() == Backend.Kind.CPU, "a CPU-build case");
    ServerSocket l = new ServerSocket(0, 64, InetAddress.getLoopbackAddress());
    String yaml =
        "model_name_or_path: /nowhere/model\ndataset_dir: /nowhere/data\n"
            + "output_dir: /nowhere/out\nmax_steps: 1\nddp_backend: nccl\n";
    RankContext c = ctx(0, List.of(l), JobSecret.generate(), List.of("0"), yaml);
    IllegalStateException e =
        assertThrows(IllegalStateException.class, () -> new TrainerRankWork().run(c));
    assertTrue(
        e.getMessage().contains("ddp_backend=nccl") && e.getMessage().contains("mvn -Pcuda"),
        e.getMessage());
    assertTrue(l.isClosed(), "the listener the work owns is closed");
    assertFalse(e.getMessage().contains("UnsatisfiedLinkError"), e.getMessage());
  }
}
