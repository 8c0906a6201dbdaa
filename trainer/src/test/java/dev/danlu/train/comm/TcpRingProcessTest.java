package dev.danlu.train.comm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.DataInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Three separate JVMs joined by the master rendezvous and the TCP ring; always destroyed. */
class TcpRingProcessTest {

  @Test
  void threeProcessesAllReduceThroughTheRing(@TempDir Path dir) throws Exception {
    int n = 3;
    int size = 300_007;
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    List<Process> procs = new ArrayList<>();
    byte[] secret = "process-test-secret".getBytes(StandardCharsets.UTF_8);
    try (MasterRendezvous.Server master = MasterRendezvous.Server.start("127.0.0.1", n, secret)) {
      for (int r = 0; r < n; r++) {
        ProcessBuilder pb =
            new ProcessBuilder(
                java,
                "-Xmx256m",
                "-cp",
                System.getProperty("java.class.path"),
                RingWorkerMain.class.getName(),
                String.valueOf(size),
                dir.resolve("out-" + r).toString());
        pb.environment().put(MasterRendezvous.ENV_RANK, String.valueOf(r));
        pb.environment().put(MasterRendezvous.ENV_WORLD_SIZE, String.valueOf(n));
        pb.environment().put(MasterRendezvous.ENV_MASTER_ADDR, "127.0.0.1");
        pb.environment().put(MasterRendezvous.ENV_MASTER_PORT, String.valueOf(master.port()));
        pb.environment().put(MasterRendezvous.ENV_MASTER_IS_LAUNCHER, "1");
        pb.environment().put(MasterRendezvous.ENV_JOB_SECRET, "process-test-secret");
        pb.redirectErrorStream(true).redirectOutput(dir.resolve("log-" + r).toFile());
        procs.add(pb.start());
      }
      for (int r = 0; r < n; r++) {
        Process p = procs.get(r);
        assertTrue(p.waitFor(90, TimeUnit.SECONDS), "worker " + r + " hung; log: " + log(dir, r));
        assertEquals(0, p.exitValue(), "worker " + r + " failed; log: " + log(dir, r));
      }
    } finally {
      for (Process p : procs) {
        p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      }
    }
    float[] first = read(dir.resolve("out-0"), size);
    for (int r = 1; r < n; r++) {
      assertArrayEquals(first, read(dir.resolve("out-" + r), size), "rank " + r + " differs");
    }
    for (int i = 0; i < size; i++) {
      double want = 0;
      for (int q = 0; q < n; q++) {
        want += CollectiveContract.input(q, i);
      }
      assertEquals(want, first[i], 1e-6 * (1 + Math.abs(want)) * n, "element " + i);
    }
  }

  private static String log(Path dir, int r) throws IOException {
    Path f = dir.resolve("log-" + r);
    return Files.exists(f) ? Files.readString(f) : "(none)";
  }

  private static float[] read(Path f, int size) throws IOException {
    float[] out = new float[size];
    try (DataInputStream in = new DataInputStream(Files.newInputStream(f))) {
      for (int i = 0; i < size; i++) {
        out[i] = in.readFloat();
      }
    }
    return out;
  }
}
