package dev.danlu.bench;

import dev.danlu.train.comm.LocalCommunicator;
import dev.danlu.train.comm.MasterRendezvous;
import dev.danlu.train.comm.ReduceOp;
import dev.danlu.train.comm.TcpRingCommunicator;
import dev.danlu.train.comm.TcpRingOptions;
import dev.danlu.train.optim.AdamW;
import dev.danlu.train.optim.DynamicLossScaler;
import dev.danlu.train.optim.LrSchedule;
import dev.danlu.train.zero.FlatParams;
import dev.danlu.train.zero.NamedParam;
import dev.danlu.train.zero.Zero2Optimizer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * TCP ring bandwidth against raw loopback TCP, and the ZeRO-2 optimizer step against a forward +
 * backward of the same size, all measured in one run.
 *
 * <p>Ranks are separate JVM processes on 127.0.0.1 (started by this program, joined through {@link
 * MasterRendezvous}, always destroyed), because that is how train-local and Spark run them: each
 * rank has its own heap, GC and socket buffers. Bandwidths follow nccl-tests' definitions for a
 * buffer of S bytes taking t seconds: algBw = S/t; all-reduce busBw = algBw·2(N−1)/N;
 * reduce-scatter busBw = algBw·(N−1)/N (S is the whole buffer, each rank keeps S/N). busBw is what
 * each link carries, so it compares directly with one TCP stream's throughput. Every figure (ring
 * and reference alike) is the best of several iterations, because the hosts this runs on are often
 * shared and a mean would mostly measure the neighbours.
 *
 * <pre>
 * java -cp bench/target/classes:$(cat bench/target/classpath.txt) dev.danlu.bench.CommBench \
 *     [--ranks 2,4] [--sizes-mb 1,4,16,64,256] [--opt-params 16777216]
 * </pre>
 */
public final class CommBench {
  private static final double GB = 1e9;

  private CommBench() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> a = parse(args);
    if (a.containsKey("worker")) {
      worker(a);
      return;
    }
    int[] ranks = ints(a.getOrDefault("ranks", "2,4"));
    int[] sizesMb = ints(a.getOrDefault("sizes-mb", "1,4,16,64,256"));
    int optParams = Integer.parseInt(a.getOrDefault("opt-params", "16777216"));
    System.out.printf(
        "CommBench: %d cores, sizes %s MB, ranks %s, Java %s%n",
        Runtime.getRuntime().availableProcessors(),
        a.getOrDefault("sizes-mb", "1,4,16,64,256"),
        a.getOrDefault("ranks", "2,4"),
        System.getProperty("java.version"));

    Map<Integer, Double> raw = new HashMap<>();
    Map<String, Double> concurrent = new HashMap<>();
    for (int mb : sizesMb) {
      raw.put(mb, rawLoopback((long) mb << 20, iterations(mb)));
      for (int n : ranks) {
        concurrent.put(n + "." + mb, rawLoopbackConcurrent((long) mb << 20, iterations(mb), n));
      }
    }
    System.out.println();
    System.out.println(
        "| N | MB | raw TCP 1 stream GB/s | raw TCP per stream, N at once GB/s"
            + " | all-reduce busBw GB/s | vs 1 stream | vs N at once"
            + " | reduce-scatter busBw GB/s | vs 1 stream | vs N at once |");
    System.out.println("|---|---|---|---|---|---|---|---|---|---|");
    Map<Integer, Map<String, Double>> optByN = new HashMap<>();
    for (int n : ranks) {
      Map<String, Double> res = runWorkers(n, sizesMb, n == 2 ? optParams : 0);
      for (int mb : sizesMb) {
        double s = (double) ((long) mb << 20);
        double ar = s / res.get("allreduce." + mb) * 2.0 * (n - 1) / n / GB;
        double rs = s / res.get("reducescatter." + mb) * (n - 1) / n / GB;
        double r = raw.get(mb) / GB;
        double rc = concurrent.get(n + "." + mb) / GB;
        System.out.printf(
            "| %d | %d | %.2f | %.2f | %.2f | %.0f%% | %.0f%% | %.2f | %.0f%% | %.0f%% |%n",
            n, mb, r, rc, ar, 100 * ar / r, 100 * ar / rc, rs, 100 * rs / r, 100 * rs / rc);
      }
      optByN.put(n, res);
    }
    if (optParams > 0) {
      System.out.println();
      double fb = forwardBackwardSeconds(optParams);
      double opt1 = optimizerStepSeconds(optParams);
      System.out.printf(
          "forward+backward, synthetic matmul of %d params x 512 tokens (6*P*T = %.1f GFLOP, ND4J, 1 process): %.3f s%n",
          optParams, 6.0 * optParams * 512 / 1e9, fb);
      System.out.printf(
          "ZeRO-2 optimizer step, %d params, N=1 (no communication): %.3f s = %.1f%% of forward+backward%n",
          optParams, opt1, 100 * opt1 / fb);
      Map<String, Double> r2 = optByN.get(2);
      if (r2 != null && r2.containsKey("optstep")) {
        double opt2 = r2.get("optstep");
        System.out.printf(
            "ZeRO-2 optimizer step, %d params, N=2 TCP ring processes (reduce-scatter + AdamW on half + all-gather): %.3f s = %.1f%% of forward+backward%n",
            optParams, opt2, 100 * opt2 / fb);
      }
    }
  }

  private static int iterations(int mb) {
    return Math.max(2, Math.min(20, 512 / Math.max(1, mb)));
  }

  // ---- reference: one TCP stream over loopback ------------------------------------------------

  /**
   * Bytes per second of one loopback stream moving {@code bytes} from a direct buffer of that size
   * into another (until the receiver acks): the same memory footprint as the collective, so neither
   * side profits from a cache-resident buffer the other cannot have.
   */
  static double rawLoopback(long bytes, int iters) throws Exception {
    if (bytes > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("raw reference supports buffers below 2 GB");
    }
    try (ServerSocketChannel server = ServerSocketChannel.open()) {
      server.bind(new InetSocketAddress("127.0.0.1", 0));
      Thread receiver =
          new Thread(
              () -> {
                try (SocketChannel ch = server.accept()) {
                  ByteBuffer in = ByteBuffer.allocateDirect((int) bytes);
                  for (int it = 0; it <= iters; it++) {
                    in.clear();
                    while (in.hasRemaining()) {
                      ch.read(in);
                    }
                    ch.write(ByteBuffer.wrap(new byte[] {1}));
                  }
                } catch (IOException e) {
                  throw new RuntimeException(e);
                }
              });
      receiver.start();
      try (SocketChannel ch = SocketChannel.open(server.getLocalAddress())) {
        ByteBuffer out = ByteBuffer.allocateDirect((int) bytes);
        ByteBuffer ack = ByteBuffer.allocate(1);
        long best = Long.MAX_VALUE;
        for (int it = 0; it <= iters; it++) {
          long t0 = System.nanoTime();
          out.clear();
          while (out.hasRemaining()) {
            ch.write(out);
          }
          ack.clear();
          ch.read(ack);
          if (it > 0) { // iteration 0 warms up
            best = Math.min(best, System.nanoTime() - t0);
          }
        }
        receiver.join();
        return bytes / (best / 1e9);
      }
    }
  }

  /**
   * Per-stream bytes per second when {@code streams} loopback streams run at once, as the N links
   * of a ring do: on a host with few cores this, not the single-stream figure, bounds what each
   * ring link can carry. Buffers are capped at 64 MB per side (the data is sent in full by
   * repeating them) to keep memory bounded with 4 streams.
   */
  static double rawLoopbackConcurrent(long bytes, int iters, int streams) throws Exception {
    List<Thread> threads = new ArrayList<>();
    double[] rates = new double[streams];
    Throwable[] failure = new Throwable[1];
    for (int k = 0; k < streams; k++) {
      int kk = k;
      Thread t =
          new Thread(
              () -> {
                try {
                  rates[kk] = rawLoopbackRepeated(bytes, iters, (int) Math.min(bytes, 64L << 20));
                } catch (Exception e) {
                  failure[0] = e;
                }
              });
      threads.add(t);
      t.start();
    }
    for (Thread t : threads) {
      t.join();
    }
    if (failure[0] != null) {
      throw new IllegalStateException("concurrent loopback reference failed", failure[0]);
    }
    double sum = 0;
    for (double r : rates) {
      sum += r;
    }
    return sum / streams;
  }

  private static double rawLoopbackRepeated(long bytes, int iters, int bufBytes) throws Exception {
    try (ServerSocketChannel server = ServerSocketChannel.open()) {
      server.bind(new InetSocketAddress("127.0.0.1", 0));
      Thread receiver =
          new Thread(
              () -> {
                try (SocketChannel ch = server.accept()) {
                  ByteBuffer in = ByteBuffer.allocateDirect(bufBytes);
                  for (int it = 0; it <= iters; it++) {
                    long got = 0;
                    while (got < bytes) {
                      in.clear();
                      if (bytes - got < in.capacity()) {
                        in.limit((int) (bytes - got));
                      }
                      got += ch.read(in);
                    }
                    ch.write(ByteBuffer.wrap(new byte[] {1}));
                  }
                } catch (IOException e) {
                  throw new RuntimeException(e);
                }
              });
      receiver.start();
      try (SocketChannel ch = SocketChannel.open(server.getLocalAddress())) {
        ByteBuffer out = ByteBuffer.allocateDirect(bufBytes);
        ByteBuffer ack = ByteBuffer.allocate(1);
        long best = Long.MAX_VALUE;
        for (int it = 0; it <= iters; it++) {
          long t0 = System.nanoTime();
          long sent = 0;
          while (sent < bytes) {
            out.clear();
            if (bytes - sent < out.capacity()) {
              out.limit((int) (bytes - sent));
            }
            while (out.hasRemaining()) {
              sent += ch.write(out);
            }
          }
          ack.clear();
          ch.read(ack);
          if (it > 0) {
            best = Math.min(best, System.nanoTime() - t0);
          }
        }
        receiver.join();
        return bytes / (best / 1e9);
      }
    }
  }

  // ---- ring ranks as processes ---------------------------------------------------------------

  private static Map<String, Double> runWorkers(int n, int[] sizesMb, int optParams)
      throws Exception {
    int port;
    try (ServerSocketChannel probe = ServerSocketChannel.open()) {
      probe.bind(new InetSocketAddress("127.0.0.1", 0));
      port = ((InetSocketAddress) probe.getLocalAddress()).getPort();
    }
    String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    StringBuilder sizes = new StringBuilder();
    for (int mb : sizesMb) {
      sizes.append(sizes.length() == 0 ? "" : ",").append(mb);
    }
    List<Process> procs = new ArrayList<>();
    Map<String, Double> results = new HashMap<>();
    Path logs = Files.createTempDirectory("commbench");
    byte[] secretBytes = new byte[32];
    new java.security.SecureRandom().nextBytes(secretBytes);
    String secret =
        java.util.HexFormat.of().formatHex(secretBytes); // one per job, shared by its ranks
    try {
      for (int r = 0; r < n; r++) {
        ProcessBuilder pb =
            new ProcessBuilder(
                javaBin,
                "-Xmx1200m",
                "-cp",
                System.getProperty("java.class.path"),
                CommBench.class.getName(),
                "--worker",
                "true",
                "--sizes-mb",
                sizes.toString(),
                "--opt-params",
                String.valueOf(optParams));
        pb.environment().put(MasterRendezvous.ENV_RANK, String.valueOf(r));
        pb.environment().put(MasterRendezvous.ENV_WORLD_SIZE, String.valueOf(n));
        pb.environment().put(MasterRendezvous.ENV_MASTER_ADDR, "127.0.0.1");
        pb.environment().put(MasterRendezvous.ENV_MASTER_PORT, String.valueOf(port));
        pb.environment().put(MasterRendezvous.ENV_JOB_SECRET, secret);
        pb.redirectErrorStream(true);
        if (r != 0) {
          pb.redirectOutput(logs.resolve("rank-" + r + ".log").toFile());
        }
        procs.add(pb.start());
      }
      try (BufferedReader in =
          new BufferedReader(
              new InputStreamReader(procs.get(0).getInputStream(), StandardCharsets.UTF_8))) {
        for (String line; (line = in.readLine()) != null; ) {
          if (line.startsWith("RESULT ")) {
            String[] kv = line.substring(7).split("=");
            results.put(kv[0], Double.parseDouble(kv[1]));
          } else {
            System.err.println("[rank 0] " + line);
          }
        }
      }
      for (Process p : procs) {
        if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0) {
          throw new IllegalStateException(
              "a benchmark worker of the N="
                  + n
                  + " run failed; see the [rank 0] lines and "
                  + logs);
        }
      }
    } finally {
      for (Process p : procs) {
        p.destroyForcibly();
      }
    }
    return results;
  }

  /** One rank: time the collectives per size; rank 0 prints seconds per call. */
  private static void worker(Map<String, String> a) throws Exception {
    int[] sizesMb = ints(a.get("sizes-mb"));
    int optParams = Integer.parseInt(a.get("opt-params"));
    MasterRendezvous rdv = MasterRendezvous.fromEnv(System.getenv(), 60_000);
    try (TcpRingCommunicator c =
        TcpRingCommunicator.create(
            rdv.rank(), "127.0.0.1", rdv.secret(), rdv, TcpRingOptions.defaults())) {
      int n = c.worldSize();
      int maxFloats = 0;
      for (int mb : sizesMb) {
        maxFloats = Math.max(maxFloats, (mb << 20) / 4);
      }
      float[] buf = new float[maxFloats];
      java.util.Arrays.fill(buf, 1e-3f);
      for (int mb : sizesMb) {
        int floats = (mb << 20) / 4;
        int iters = iterations(mb);
        double ar = time(c, iters, () -> c.allReduce(buf, 0, floats, ReduceOp.SUM));
        int chunk = floats / n;
        double rs = time(c, iters, () -> c.reduceScatter(buf, 0, chunk));
        java.util.Arrays.fill(buf, 0, floats, 1e-3f); // keep values finite for the next size
        if (c.rank() == 0) {
          System.out.println("RESULT allreduce." + mb + "=" + ar);
          System.out.println("RESULT reducescatter." + mb + "=" + rs);
        }
      }
      if (optParams > 0) {
        double s = optimizerStep(c, optParams);
        if (c.rank() == 0) {
          System.out.println("RESULT optstep=" + s);
        }
      }
    }
  }

  /** Best single call (seconds) after a warm-up; every call starts together after a barrier. */
  private static double time(TcpRingCommunicator c, int iters, Runnable op) {
    op.run(); // warm-up
    long best = Long.MAX_VALUE;
    for (int i = 0; i < iters; i++) {
      c.barrier();
      long t0 = System.nanoTime();
      op.run();
      best = Math.min(best, System.nanoTime() - t0);
    }
    return best / 1e9;
  }

  // ---- optimizer step vs forward+backward ----------------------------------------------------

  private static double optimizerStep(dev.danlu.train.comm.Communicator c, int params) {
    float[] data = new float[params];
    java.util.Arrays.fill(data, 0.01f);
    FlatParams flat =
        FlatParams.of(
            List.of(new NamedParam("lm_head.weight", data, new float[params])), c.worldSize(), 16);
    Zero2Optimizer opt =
        new Zero2Optimizer(
            c,
            flat,
            new Zero2Optimizer.Config(
                AdamW.huggingFaceDefaults(), 2e-4, 0.01, 1.0, 1 << 22, LrSchedule.constant()),
            DynamicLossScaler.disabled());
    int steps = 5;
    double total = 0;
    for (int s = 0; s <= steps; s++) {
      float[] g = flat.grads();
      for (int i = 0; i < params; i++) {
        g[i] = 1e-3f * ((i + s) % 13 - 6);
      }
      c.barrier();
      long t0 = System.nanoTime();
      opt.step(1);
      if (s > 0) { // step 0 warms up
        total += (System.nanoTime() - t0) / 1e9;
      }
    }
    return total / steps;
  }

  static double optimizerStepSeconds(int params) {
    try (LocalCommunicator c = LocalCommunicator.group(1).get(0)) {
      return optimizerStep(c, params);
    }
  }

  /**
   * Forward and backward of a linear layer holding {@code params} weights on 512 tokens: Y = X·Wᵀ,
   * dX = dY·W, dW = dYᵀ·X (6·P·T flops), the matmul work a model with that many trainable weights
   * does per step. A stand-in until the model's own step can be timed here.
   */
  static double forwardBackwardSeconds(int params) {
    int in = 2048;
    int out = params / in;
    int tokens = 512;
    INDArray x = Nd4j.rand(DataType.FLOAT, tokens, in);
    INDArray w = Nd4j.rand(DataType.FLOAT, out, in);
    INDArray dy = Nd4j.rand(DataType.FLOAT, tokens, out);
    double best = Double.MAX_VALUE;
    for (int i = 0; i < 4; i++) {
      long t0 = System.nanoTime();
      INDArray y = x.mmul(w.transpose());
      INDArray dx = dy.mmul(w);
      INDArray dw = dy.transpose().mmul(x);
      double s = (System.nanoTime() - t0) / 1e9;
      if (i > 0) {
        best = Math.min(best, s); // iteration 0 warms up
      }
      y.close();
      dx.close();
      dw.close();
    }
    return best;
  }

  // ---- arguments -----------------------------------------------------------------------------

  private static Map<String, String> parse(String[] args) {
    Map<String, String> m = new HashMap<>();
    for (int i = 0; i < args.length; i++) {
      if (!args[i].startsWith("--") || i + 1 >= args.length) {
        throw new IllegalArgumentException(
            "usage: CommBench [--ranks 2,4] [--sizes-mb 1,4,16,64,256] [--opt-params N]; bad: "
                + args[i]);
      }
      m.put(args[i].substring(2), args[++i]);
    }
    return m;
  }

  private static int[] ints(String csv) {
    String[] p = csv.split(",");
    int[] out = new int[p.length];
    for (int i = 0; i < p.length; i++) {
      out[i] = Integer.parseInt(p[i].trim());
    }
    return out;
  }
}
