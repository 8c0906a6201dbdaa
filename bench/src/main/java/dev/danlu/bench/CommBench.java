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
 * each link carries, so it compares directly with two references measured in the same run: one raw
 * loopback TCP stream alone, and the "raw ring" — the worker processes streaming to their successor
 * and from their predecessor all at once on sockets of their own, the ring's traffic without its
 * arithmetic, which is the real ceiling of N links sharing one host's cores. Every wall-clock
 * figure, ring and references alike, is the median of the same number of timed calls (16-64 per
 * size, at least 1 GB moved) after a warm-up: a best-of favours whichever side was sampled more
 * often, and the median is steady where a mean would follow the odd stall.
 *
 * <p>Wall-clock ratios on a shared host depend on how the scheduler splits the cores between this
 * run's threads and the neighbours'. The program therefore also reports CPU time (all threads of
 * all processes, user + system, the kernel's loopback work included) per byte each link carries:
 * raw cost / ring cost is the busBw share the ring reaches on an idle host where the cores are the
 * limit, which is what loopback TCP is. Rows "direct" use the zero-copy {@code ByteBuffer}
 * collectives on a direct buffer, rows "float[]" the array ones.
 *
 * <pre>
 * java -cp bench/target/classes:$(cat bench/target/classpath.txt) dev.danlu.bench.CommBench \
 *     [--ranks 2,4] [--sizes-mb 1,4,16,64,256] [--opt-params 16777216] \
 *     [--slice-kb 4096] [--sockbuf-kb 0]
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
    Map<String, Double> cpu = new HashMap<>();
    StringBuilder cpuTable = new StringBuilder();
    for (int mb : sizesMb) {
      raw.put(mb, rawLoopback((long) mb << 20, rawIterations(mb)));
      cpu.put("raw." + mb, lastRawCpuPerByte);
    }
    System.out.println();
    System.out.println(
        "Two references, measured in this run: '1 stream' = one raw loopback TCP stream alone"
            + " (two threads of this process); 'raw ring' = the ring's own pattern without the"
            + " ring: the N worker processes each stream to their successor while receiving from"
            + " their predecessor, all N links at once, no arithmetic (per-link GB/s of the"
            + " slowest link) — the real ceiling of a ring whose N links share this host's cores."
            + " All GB/s figures: median of the same number of timed calls for ring and"
            + " references.");
    System.out.println(
        "| N | MB | buffer | raw TCP 1 stream GB/s | raw ring per link GB/s"
            + " | all-reduce busBw GB/s | vs 1 stream | vs raw ring"
            + " | reduce-scatter busBw GB/s | vs 1 stream | vs raw ring |");
    System.out.println("|---|---|---|---|---|---|---|---|---|---|---|");
    Map<Integer, Map<String, Double>> optByN = new HashMap<>();
    for (int n : ranks) {
      Map<String, Double> res = runWorkers(n, sizesMb, n == 2 ? optParams : 0, a);
      for (int mb : sizesMb) {
        for (String kind : new String[] {"float[]", "direct"}) {
          String k = kind.equals("direct") ? ".direct." : ".";
          double s = (double) ((long) mb << 20);
          double ar = s / res.get("allreduce" + k + mb) * 2.0 * (n - 1) / n / GB;
          double rs = s / res.get("reducescatter" + k + mb) * (n - 1) / n / GB;
          double r = raw.get(mb) / GB;
          double rc = s / res.get("rawring." + mb) / GB;
          // CPU seconds of all ranks per call, per byte each link carries (bus bytes)
          double arCpu = res.get("cpu.allreduce" + k + mb) / (s * 2.0 * (n - 1) / n) * 1e9;
          double rsCpu = res.get("cpu.reducescatter" + k + mb) / (s * (n - 1) / n) * 1e9;
          double rawCpu = cpu.get("raw." + mb);
          double ringCpu = res.get("cpu.rawring." + mb); // all N links: one byte on each
          cpuTable.append(
              String.format(
                  "| %d | %d | %s | %.2f | %.2f | %.2f | %.0f%% | %.0f%% | %.2f | %.0f%% | %.0f%% |%n",
                  n,
                  mb,
                  kind,
                  rawCpu,
                  ringCpu,
                  arCpu,
                  100 * rawCpu / arCpu,
                  100 * ringCpu / arCpu,
                  rsCpu,
                  100 * rawCpu / rsCpu,
                  100 * ringCpu / rsCpu));
          System.out.printf(
              "| %d | %d | %s | %.2f | %.2f | %.2f | %.0f%% | %.0f%% | %.2f | %.0f%% | %.0f%% |%n",
              n, mb, kind, r, rc, ar, 100 * ar / r, 100 * ar / rc, rs, 100 * rs / r, 100 * rs / rc);
        }
      }
      optByN.put(n, res);
    }
    Map<String, Double> two = optByN.get(2);
    if (two != null) {
      System.out.println();
      System.out.println(
          "Reference check: one loopback stream between two threads of this process (used above)"
              + " and between the two processes of the N=2 run");
      System.out.println(
          "| MB | 2 threads GB/s | 2 processes GB/s | 2 threads ns/B | 2 processes ns/B |");
      System.out.println("|---|---|---|---|---|");
      for (int mb : sizesMb) {
        System.out.printf(
            "| %d | %.2f | %.2f | %.2f | %.2f |%n",
            mb,
            raw.get(mb) / GB,
            ((long) mb << 20) / two.get("rawproc." + mb) / GB,
            cpu.get("raw." + mb),
            two.get("cpu.rawproc." + mb));
      }
    }
    System.out.println();
    System.out.println(
        "CPU cost (all threads of all processes, user + system), ns per byte each link carries;"
            + " 'CPU-bound ratio' = raw cost / ring cost, the busBw share the ring would reach on an"
            + " otherwise idle host whose cores are the limit");
    System.out.println(
        "| N | MB | buffer | raw 1 stream ns/B | raw ring ns/B (one byte on each link) |"
            + " all-reduce ns/B | CPU-bound vs 1 stream | vs raw ring | reduce-scatter ns/B"
            + " | vs 1 stream | vs raw ring |");
    System.out.println("|---|---|---|---|---|---|---|---|---|---|---|");
    System.out.print(cpuTable);
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
            "ZeRO-2 optimizer step, %d params, N=2 TCP ring processes (reduce-scatter + AdamW on half + all-gather), float[] gradients: %.3f s = %.1f%% of forward+backward%n",
            optParams, opt2, 100 * opt2 / fb);
        double opt2d = r2.get("optstep.direct");
        System.out.printf(
            "ZeRO-2 optimizer step, %d params, N=2 TCP ring processes, direct gradients (the ring's zero-copy path, what the trainer uses on TCP): %.3f s = %.1f%% of forward+backward; %.2fx the float[] step%n",
            optParams, opt2d, 100 * opt2d / fb, opt2d / opt2);
      }
    }
  }

  /**
   * Timed calls per measurement, the same for the ring and the references: at least 16 (for a
   * steady median) and 1 GB moved (CPU time, read in 10 ms clock ticks, to a few %).
   */
  private static int iterations(int mb) {
    return Math.max(16, Math.min(64, 1024 / Math.max(1, mb)));
  }

  private static int rawIterations(int mb) {
    return iterations(mb);
  }

  static double median(double[] v) {
    double[] s = v.clone();
    java.util.Arrays.sort(s);
    int n = s.length;
    return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
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
        double[] times = new double[iters];
        long cpu0 = 0;
        for (int it = 0; it <= iters; it++) {
          if (it == 1) {
            cpu0 = cpuNanos();
          }
          long t0 = System.nanoTime();
          out.clear();
          while (out.hasRemaining()) {
            ch.write(out);
          }
          ack.clear();
          ch.read(ack);
          if (it > 0) { // iteration 0 warms up
            times[it - 1] = (System.nanoTime() - t0) / 1e9;
          }
        }
        receiver.join();
        lastRawCpuPerByte = (cpuNanos() - cpu0) / ((double) bytes * iters);
        return bytes / median(times);
      }
    }
  }

  /** CPU nanoseconds (all threads, user + system) per byte of the last raw measurement. */
  private static volatile double lastRawCpuPerByte;

  /** CPU time of this whole process, including the kernel's loopback work done in its syscalls. */
  static long cpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean)
            java.lang.management.ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }

  // ---- ring ranks as processes ---------------------------------------------------------------

  private static Map<String, Double> runWorkers(
      int n, int[] sizesMb, int optParams, Map<String, String> args) throws Exception {
    String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    StringBuilder sizes = new StringBuilder();
    for (int mb : sizesMb) {
      sizes.append(sizes.length() == 0 ? "" : ",").append(mb);
    }
    List<Process> procs = new ArrayList<>();
    Map<String, String> a = args;
    Map<String, Double> results = new HashMap<>();
    Path logs = Files.createTempDirectory("commbench");
    byte[] secretBytes = new byte[32];
    new java.security.SecureRandom().nextBytes(secretBytes);
    String secret =
        java.util.HexFormat.of().formatHex(secretBytes); // one per job, shared by its ranks
    try (MasterRendezvous.Server master =
        MasterRendezvous.Server.start("127.0.0.1", n, secret.getBytes(StandardCharsets.UTF_8))) {
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
                "--slice-kb",
                a.getOrDefault("slice-kb", "0"),
                "--sockbuf-kb",
                a.getOrDefault("sockbuf-kb", "0"),
                "--sizes-mb",
                sizes.toString(),
                "--opt-params",
                String.valueOf(optParams));
        pb.environment().put(MasterRendezvous.ENV_RANK, String.valueOf(r));
        pb.environment().put(MasterRendezvous.ENV_WORLD_SIZE, String.valueOf(n));
        pb.environment().put(MasterRendezvous.ENV_MASTER_ADDR, "127.0.0.1");
        pb.environment().put(MasterRendezvous.ENV_MASTER_PORT, String.valueOf(master.port()));
        pb.environment().put(MasterRendezvous.ENV_MASTER_IS_LAUNCHER, "1");
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
    TcpRingOptions opts = TcpRingOptions.defaults();
    int sliceKb = Integer.parseInt(a.get("slice-kb"));
    if (sliceKb > 0) {
      opts = opts.withSliceBytes(sliceKb << 10);
    }
    opts = opts.withSocketBufferBytes(Integer.parseInt(a.get("sockbuf-kb")) << 10);
    MasterRendezvous rdv = MasterRendezvous.fromEnv(System.getenv(), 60_000);
    try (TcpRingCommunicator c =
        TcpRingCommunicator.create(rdv.rank(), "127.0.0.1", rdv.secret(), rdv, opts)) {
      int n = c.worldSize();
      int maxFloats = 0;
      for (int mb : sizesMb) {
        maxFloats = Math.max(maxFloats, (mb << 20) / 4);
      }
      float[] buf = new float[maxFloats];
      java.util.Arrays.fill(buf, 1e-3f);
      // the same data in native memory, for the zero-copy ByteBuffer collectives
      ByteBuffer direct = ByteBuffer.allocateDirect(maxFloats * 4);
      for (int mb : sizesMb) {
        int floats = (mb << 20) / 4;
        int iters = iterations(mb);
        int chunk = floats / n;
        double[] ar = time(c, iters, () -> c.allReduce(buf, 0, floats, ReduceOp.SUM));
        double[] rs = time(c, iters, () -> c.reduceScatter(buf, 0, chunk));
        java.util.Arrays.fill(buf, 0, floats, 1e-3f); // keep values finite for the next size
        if (n == 2) {
          double[] raw = rawBetweenRanks(c, direct, mb << 20, rawIterations(mb));
          if (c.rank() == 0) {
            System.out.println("RESULT rawproc." + mb + "=" + raw[0]);
            System.out.println("RESULT cpu.rawproc." + mb + "=" + raw[1]);
          }
        }
        double[] ringRef = rawRing(c, direct, mb << 20, rawIterations(mb));
        if (c.rank() == 0) {
          System.out.println("RESULT rawring." + mb + "=" + ringRef[0]);
          System.out.println("RESULT cpu.rawring." + mb + "=" + ringRef[1]);
        }
        direct.clear();
        direct.order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(buf, 0, maxFloats);
        double[] ard = time(c, iters, () -> c.allReduce(direct, 0, floats, ReduceOp.SUM));
        double[] rsd = time(c, iters, () -> c.reduceScatter(direct, 0, chunk, chunk));
        if (c.rank() == 0) {
          report("allreduce." + mb, ar);
          report("reducescatter." + mb, rs);
          report("allreduce.direct." + mb, ard);
          report("reducescatter.direct." + mb, rsd);
        }
      }
      if (optParams > 0) {
        double s = optimizerStep(c, optParams, false);
        double sd = optimizerStep(c, optParams, true);
        if (c.rank() == 0) {
          System.out.println("RESULT optstep=" + s);
          System.out.println("RESULT optstep.direct=" + sd);
        }
      }
    }
  }

  /**
   * The ring's own traffic without the ring: every rank streams {@code bytes} to its successor on a
   * socket of its own while receiving as many from its predecessor, all N links at once, no
   * arithmetic, no copies beyond the kernel's. This is what each link of a ring can carry on this
   * host (on one host the N links share its cores). Returns the median over iterations of the
   * slowest rank's time (s), and the CPU time of all processes per byte on each link (ns), warm-up
   * included.
   */
  private static double[] rawRing(TcpRingCommunicator c, ByteBuffer mem, int bytes, int iters)
      throws Exception {
    int n = c.worldSize();
    try (ServerSocketChannel server = ServerSocketChannel.open()) {
      server.bind(new InetSocketAddress("127.0.0.1", 0));
      byte[] mine =
          Integer.toString(((InetSocketAddress) server.getLocalAddress()).getPort())
              .getBytes(StandardCharsets.UTF_8);
      byte[][] ports = c.allGatherBytes(mine);
      int nextPort =
          Integer.parseInt(new String(ports[(c.rank() + 1) % n], StandardCharsets.UTF_8));
      // connect() completes against the listen backlog, so every rank can connect, then accept
      try (SocketChannel out = SocketChannel.open(new InetSocketAddress("127.0.0.1", nextPort));
          SocketChannel in = server.accept()) {
        ByteBuffer recv = ByteBuffer.allocateDirect(Math.min(bytes, 64 << 20));
        java.util.concurrent.ExecutorService sender =
            java.util.concurrent.Executors.newSingleThreadExecutor();
        try {
          long cpu0 = cpuNanos();
          double[] times = new double[iters];
          for (int it = 0; it <= iters; it++) {
            c.barrier();
            long t0 = System.nanoTime();
            java.util.concurrent.Future<?> sending =
                sender.submit(
                    () -> {
                      ByteBuffer m = mem.duplicate();
                      m.clear().limit(bytes);
                      while (m.hasRemaining()) {
                        out.write(m);
                      }
                      return null;
                    });
            long got = 0;
            while (got < bytes) {
              recv.clear();
              if (bytes - got < recv.capacity()) {
                recv.limit((int) (bytes - got));
              }
              int k = in.read(recv);
              if (k < 0) {
                throw new IOException("the previous rank closed the reference ring");
              }
              got += k;
            }
            sending.get();
            float[] t = {(float) ((System.nanoTime() - t0) / 1e9)};
            c.allReduce(t, 0, 1, ReduceOp.MAX); // a ring is as fast as its slowest link
            if (it > 0) {
              times[it - 1] = t[0];
            }
          }
          float[] cpu = {(float) ((cpuNanos() - cpu0) / ((double) bytes * (iters + 1)))};
          c.allReduce(cpu, 0, 1, ReduceOp.SUM);
          return new double[] {median(times), cpu[0]};
        } finally {
          sender.shutdownNow();
        }
      }
    }
  }

  /**
   * The reference again, between two processes: one loopback stream from rank 0 to rank 1 on a
   * socket of its own, between direct buffers of the collective's size. Returns the median transfer
   * time (s) and the CPU time of both processes per byte (ns), warm-up transfer included.
   */
  private static double[] rawBetweenRanks(
      TcpRingCommunicator c, ByteBuffer mem, int bytes, int iters) throws IOException {
    ServerSocketChannel server = null;
    byte[] port = new byte[0];
    if (c.rank() == 1) {
      server = ServerSocketChannel.open();
      server.bind(new InetSocketAddress("127.0.0.1", 0));
      int p = ((InetSocketAddress) server.getLocalAddress()).getPort();
      port = Integer.toString(p).getBytes(StandardCharsets.UTF_8);
    }
    int p = Integer.parseInt(new String(c.allGatherBytes(port)[1], StandardCharsets.UTF_8));
    long cpu0 = cpuNanos();
    double[] times = new double[iters];
    if (c.rank() == 0) {
      try (SocketChannel ch = SocketChannel.open(new InetSocketAddress("127.0.0.1", p))) {
        ByteBuffer ack = ByteBuffer.allocate(1);
        for (int it = 0; it <= iters; it++) {
          long t0 = System.nanoTime();
          mem.clear().limit(bytes);
          while (mem.hasRemaining()) {
            ch.write(mem);
          }
          ack.clear();
          while (ack.hasRemaining()) {
            if (ch.read(ack) < 0) {
              throw new IOException("rank 1 closed the reference stream");
            }
          }
          if (it > 0) {
            times[it - 1] = (System.nanoTime() - t0) / 1e9;
          }
        }
      }
    } else if (c.rank() == 1) {
      try (ServerSocketChannel s = server;
          SocketChannel ch = s.accept()) {
        for (int it = 0; it <= iters; it++) {
          mem.clear().limit(bytes);
          while (mem.hasRemaining()) {
            if (ch.read(mem) < 0) {
              throw new IOException("rank 0 closed the reference stream");
            }
          }
          ch.write(ByteBuffer.wrap(new byte[] {1}));
        }
      }
    }
    float[] cpu = {(float) ((cpuNanos() - cpu0) / ((double) bytes * (iters + 1)))};
    c.allReduce(cpu, 0, 1, ReduceOp.SUM);
    return new double[] {median(times), cpu[0]};
  }

  private static void report(String key, double[] timeAndCpu) {
    System.out.println("RESULT " + key + "=" + timeAndCpu[0]);
    System.out.println("RESULT cpu." + key + "=" + timeAndCpu[1]);
  }

  /**
   * Median call (seconds) after a warm-up, every call starting together after a barrier; and the
   * mean CPU seconds per call summed over all ranks (the barriers' small cost included).
   */
  private static double[] time(TcpRingCommunicator c, int iters, Runnable op) {
    op.run(); // warm-up
    double[] times = new double[iters];
    long cpu0 = cpuNanos();
    for (int i = 0; i < iters; i++) {
      c.barrier();
      long t0 = System.nanoTime();
      op.run();
      times[i] = (System.nanoTime() - t0) / 1e9;
    }
    float[] cpu = {(float) ((cpuNanos() - cpu0) / 1e9 / iters)};
    c.allReduce(cpu, 0, 1, ReduceOp.SUM);
    // a collective is as slow as its slowest rank: rank 0 reports the slowest rank's median
    float[] med = {(float) median(times)};
    c.allReduce(med, 0, 1, ReduceOp.MAX);
    return new double[] {med[0], cpu[0]};
  }

  // ---- optimizer step vs forward+backward ----------------------------------------------------

  /** Mean seconds per step; {@code direct}: gradients in a direct buffer (zero-copy on TCP). */
  private static double optimizerStep(
      dev.danlu.train.comm.Communicator c, int params, boolean direct) {
    float[] data = new float[params];
    java.util.Arrays.fill(data, 0.01f);
    FlatParams flat =
        FlatParams.of(
            List.of(new NamedParam("lm_head.weight", data, new float[params])),
            c.worldSize(),
            16,
            direct);
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
      float[] g = new float[params];
      for (int i = 0; i < params; i++) {
        g[i] = 1e-3f * ((i + s) % 13 - 6);
      }
      if (direct) {
        flat.gradFloats().put(0, g);
      } else {
        System.arraycopy(g, 0, flat.grads(), 0, params);
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
      return optimizerStep(c, params, false);
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
            "usage: CommBench [--ranks 2,4] [--sizes-mb 1,4,16,64,256] [--opt-params N] [--slice-kb K] [--sockbuf-kb K]; bad: "
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
