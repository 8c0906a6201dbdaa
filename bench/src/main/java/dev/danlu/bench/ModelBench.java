package dev.danlu.bench;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.lora.LoraModule;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.Llama;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.tensor.Backend;
import dev.danlu.train.tensor.Gemm;
import dev.danlu.train.tensor.Timers;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.bytedeco.javacpp.Pointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Forward + backward step time of the LoRA training path, as FLOP/s and as a fraction (MFU) of
 * ND4J's own fp32 gemm throughput measured in the same run on the same shapes:
 *
 * <ul>
 *   <li>(a) stories260K (real weights from ../shared, else its shape with random weights), batch 8
 *       x seq 256, LoRA r=8 on all 7 targets + trained embed_tokens and lm_head;
 *   <li>(b) one LLaMA-2-7B-shaped decoder layer (hidden 4096, intermediate 11008, 32 heads, seq
 *       512, batch 1), LoRA r=64 alpha 128 dropout 0.05 on all 7 targets, embedding/LM head over a
 *       256-token vocabulary (counted, ~1% of the FLOPs).
 * </ul>
 *
 * <p>FLOPs counted: every matrix product the step executes (frozen projections forward and dInp,
 * LoRA A/B forward and backward, attention scores and values over the full seq x seq block, LM
 * head), 2 per multiply-add. The "gemm-only" line replays exactly the same gemm calls without the
 * rest, so step - gemm-only is the time spent outside gemm.
 *
 * <p>Run: {@code java -cp "bench/target/classes:$(cat bench/target/classpath.txt)"
 * dev.danlu.bench.ModelBench [stories|layer|all|ab] [steps]}; {@code ab} alternates steps between
 * {@link Gemm}'s direct OpenBLAS path and ND4J's gemm op on both cases, so that the two are
 * compared under the same machine load.
 */
public final class ModelBench {
  private ModelBench() {}

  private static long peakRss;

  public static void main(String[] args) throws Exception {
    Backend.select();
    String which = args.length > 0 ? args[0] : "all";
    int steps = args.length > 1 ? Integer.parseInt(args[1]) : 3;
    System.out.printf(
        "backend %s, %d cores, max heap %d MB%n",
        Backend.loaded(),
        Runtime.getRuntime().availableProcessors(),
        Runtime.getRuntime().maxMemory() >> 20);
    double peak = gemmPeak();
    if (which.equals("ab")) {
      abStories(steps);
      abLayer(steps);
      return;
    }
    if (which.equals("stories") || which.equals("all")) {
      stories(steps, peak);
    }
    if (which.equals("layer") || which.equals("all")) {
      layer7b(steps, peak);
    }
    trackOffHeap();
    System.out.printf(
        "peak heap %d MB, peak process RSS %d MB (off-heap ND4J arrays + natives ~ RSS - heap)%n",
        peakHeap() >> 20, peakRss >> 20);
  }

  /** Best fp32 gemm GFLOP/s over the 7B layer's forward and dInp shapes. */
  static double gemmPeak() {
    long c0 = processCpuNanos();
    double m0 = machineBusySeconds();
    long t0 = System.nanoTime();
    double best = gemmPeak(6);
    double others =
        Math.max(
            0,
            (machineBusySeconds() - m0 - (processCpuNanos() - c0) / 1e9)
                / ((System.nanoTime() - t0) / 1e9));
    System.out.printf(
        "gemm peak (ND4J fp32, [512x4096]x[4096x11008] and dY W): %.1f GFLOP/s (other processes"
            + " used %.2f cores meanwhile)%n",
        best / 1e9, others);
    return best;
  }

  /** Best of {@code reps} runs of the two 7B MLP gemm shapes (forward x W^T and dY W). */
  static double gemmPeak(int reps) {
    int n = 512;
    int d = 4096;
    int f = 11008;
    INDArray x = Nd4j.rand(DataType.FLOAT, n, d);
    INDArray w = Nd4j.rand(DataType.FLOAT, f, d);
    INDArray y = Nd4j.create(DataType.FLOAT, n, f);
    INDArray dx = Nd4j.create(DataType.FLOAT, n, d);
    double flops = 2.0 * n * d * f;
    double best = 0;
    for (int i = 0; i < reps; i++) {
      long t0 = System.nanoTime();
      Nd4j.gemm(x, w, y, false, true, 1.0, 0.0); // forward: x W^T
      double a = flops / ((System.nanoTime() - t0) / 1e9);
      t0 = System.nanoTime();
      Nd4j.gemm(y, w, dx, false, false, 1.0, 0.0); // backward: dY W
      double b = flops / ((System.nanoTime() - t0) / 1e9);
      best = Math.max(best, Math.max(a, b));
    }
    x.close();
    w.close();
    y.close();
    dx.close();
    return best;
  }

  static void stories(int steps, double peak) throws Exception {
    Path dir =
        Path.of(System.getProperty("danlu.shared.dir", "../shared"), "fixtures", "stories260K");
    LlamaWeights w;
    if (Files.isDirectory(dir)) {
      w = HfLlama.load(dir, DataType.FLOAT);
    } else {
      System.out.println("(no " + dir + ": random weights in stories260K's shape)");
      w =
          LlamaWeights.random(
              new LlamaConfig(64, 172, 5, 8, 4, 512, 1e-5, 10000, null, true, 512),
              1,
              DataType.FLOAT);
    }
    LoraConfig lc = new LoraConfig(8, 16, 0.05, LoraConfig.allTargets(), true, true, 1);
    run("stories260K b=8 T=256 r=8 +embed/head", w, lc, 8, 256, steps, peak, false);
  }

  static void layer7b(int steps, double peak) {
    run("7B layer b=1 T=512 r=64", layerWeights(), layerLora(), 1, 512, steps, peak, true);
  }

  static LlamaWeights layerWeights() {
    LlamaConfig c = new LlamaConfig(4096, 11008, 1, 32, 32, 256, 1e-5, 10000, null, false, 4096);
    return LlamaWeights.random(c, 1, DataType.FLOAT);
  }

  static LoraConfig layerLora() {
    return new LoraConfig(64, 128, 0.05, LoraConfig.allTargets(), false, false, 1);
  }

  static void abStories(int steps) throws Exception {
    Path dir =
        Path.of(System.getProperty("danlu.shared.dir", "../shared"), "fixtures", "stories260K");
    LlamaWeights w =
        Files.isDirectory(dir)
            ? HfLlama.load(dir, DataType.FLOAT)
            : LlamaWeights.random(
                new LlamaConfig(64, 172, 5, 8, 4, 512, 1e-5, 10000, null, true, 512),
                1,
                DataType.FLOAT);
    LoraConfig lc = new LoraConfig(8, 16, 0.05, LoraConfig.allTargets(), true, true, 1);
    ab("stories260K b=8 T=256 r=8 +embed/head", w, lc, 8, 256, steps);
  }

  static void abLayer(int steps) {
    ab("7B layer b=1 T=512 r=64", layerWeights(), layerLora(), 1, 512, steps);
  }

  /** Best step with the direct OpenBLAS path and with ND4J's op, steps alternating. */
  static void ab(String name, LlamaWeights w, LoraConfig lc, int batch, int seq, int steps) {
    LlamaConfig c = w.config();
    LoraAdapter ad = LoraAdapter.init(lc, w);
    LlamaState s = new LlamaState(c, batch, seq, lc, false, DataType.FLOAT);
    int[] ids = new int[batch * seq];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = (i * 7919) % c.vocabSize();
    }
    double flops = stepFlops(c, lc, batch, seq);
    double[] best = {Double.MAX_VALUE, Double.MAX_VALUE};
    boolean was = Gemm.direct(true);
    for (int i = 0; i <= steps; i++) { // round 0 warms both paths up
      for (int v = 0; v < 2; v++) {
        Gemm.direct(v == 0);
        Batch b = new Batch(batch, seq, ids, null, ids, null, i, true);
        long t0 = System.nanoTime();
        Llama.forward(w, ad, s, b);
        Llama.backward(w, ad, s, 1.0);
        if (i > 0) {
          best[v] = Math.min(best[v], (System.nanoTime() - t0) / 1e9);
        }
      }
    }
    Gemm.direct(was);
    System.out.printf(
        "%s, %d alternating steps each: direct OpenBLAS %.3f s (%.1f GFLOP/s), ND4J gemm op %.3f s"
            + " (%.1f GFLOP/s): direct is %.2fx%n",
        name,
        steps,
        best[0],
        flops / best[0] / 1e9,
        best[1],
        flops / best[1] / 1e9,
        best[1] / best[0]);
  }

  static void run(
      String name,
      LlamaWeights w,
      LoraConfig lc,
      int batch,
      int seq,
      int steps,
      double peak,
      boolean interleave) {
    LlamaConfig c = w.config();
    LoraAdapter ad = LoraAdapter.init(lc, w);
    LlamaState s = new LlamaState(c, batch, seq, lc, false, DataType.FLOAT);
    SplittableRandom r = new SplittableRandom(1);
    int[] ids = new int[batch * seq];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = r.nextInt(c.vocabSize());
    }
    double flops = stepFlops(c, lc, batch, seq);
    double best = Double.MAX_VALUE;
    double fwdBest = Double.MAX_VALUE;
    double bestRatio = 0;
    double cpu = 0;
    double wall = 0;
    double othersAtBest = Double.NaN;
    double quietBest = Double.MAX_VALUE;
    for (int i = 0; i <= steps; i++) { // step 0 warms up
      // the machine may be shared: measure the gemm reference next to every step
      double localPeak = interleave ? gemmPeak(2) : peak;
      Batch b = new Batch(batch, seq, ids, null, ids, null, i, true);
      long c0 = processCpuNanos();
      double m0 = machineBusySeconds();
      long t0 = System.nanoTime();
      Llama.forward(w, ad, s, b);
      long t1 = System.nanoTime();
      Llama.backward(w, ad, s, 1.0);
      long t2 = System.nanoTime();
      double stepCpu = (processCpuNanos() - c0) / 1e9;
      // jiffy-granular machine time can come out a hair below this process's own CPU time
      double others = Math.max(0, (machineBusySeconds() - m0 - stepCpu) / ((t2 - t0) / 1e9));
      if (i > 0) {
        cpu += stepCpu;
        wall += (t2 - t0) / 1e9;
        if ((t2 - t0) / 1e9 < best) {
          othersAtBest = others;
        }
        if (others < QUIET_OTHERS) {
          quietBest = Math.min(quietBest, (t2 - t0) / 1e9);
        }
      }
      trackOffHeap();
      if (i == 0) {
        Timers.reset();
      }
      if (i > 0) {
        bestRatio = Math.max(bestRatio, flops / ((t2 - t0) / 1e9) / localPeak);
        best = Math.min(best, (t2 - t0) / 1e9);
        fwdBest = Math.min(fwdBest, (t1 - t0) / 1e9);
      }
    }
    if (Timers.ON) {
      double total = 0;
      for (double v : Timers.snapshot().values()) {
        total += v;
      }
      System.out.printf("  where the time goes (per step, -Ddanlu.profile=true):%n");
      for (var e : Timers.snapshot().entrySet()) {
        System.out.printf("    %-14s %7.3f s%n", e.getKey(), e.getValue() / steps);
      }
      System.out.printf("    %-14s %7.3f s%n", "(accounted)", total / steps);
    }
    double gemmOnly = gemmReplay(w, ad, s, batch, seq, ids);
    System.out.printf(
        "%s: step %.3f s (forward %.3f s), %.1f GFLOP/step, %.1f GFLOP/s, MFU %.1f%% of the"
            + " run's gemm peak (best step vs the gemm reference measured next to it: %.1f%%);"
            + " gemm-only replay %.3f s (%.1f%% of the step), %.0f tokens/s; process CPU %.2f s"
            + " per step (%.2f of 2 cores busy on average)%n",
        name,
        best,
        fwdBest,
        flops / 1e9,
        flops / best / 1e9,
        100 * flops / best / peak,
        interleave ? 100 * bestRatio : 100 * flops / best / peak,
        gemmOnly,
        100 * gemmOnly / best,
        batch * seq / best,
        cpu / steps,
        cpu / wall);
    System.out.printf(
        "  other processes used %.2f cores during the best step; best step with others below %.2f"
            + " cores: %s%n",
        othersAtBest,
        QUIET_OTHERS,
        quietBest == Double.MAX_VALUE
            ? "none (the machine was busy: rerun when idle)"
            : String.format(
                "%.3f s, %.1f GFLOP/s, MFU %.1f%% of the run's gemm peak",
                quietBest, flops / quietBest / 1e9, 100 * flops / quietBest / peak));
  }

  /** Matrix-product FLOPs of one forward + backward (see the class comment). */
  static double stepFlops(LlamaConfig c, LoraConfig lc, int batch, int seq) {
    double n = (double) batch * seq;
    double perLayer = 0;
    for (LoraModule m : LoraModule.values()) {
      long[] s = LlamaWeights.linearShape(c, m);
      perLayer += 2 * 2 * n * s[0] * s[1]; // forward + dInp
      if (lc.targets().contains(m)) {
        // forward: xA^T, hB^T; backward: dY B, dY^T h, dH^T x, dH A
        perLayer += 6.0 * n * lc.rank() * (s[0] + s[1]);
      }
    }
    // q k^T and p v forward; dP, dV, dQ, dK backward: 6 products of seq x seq x headDim per head
    perLayer += 6 * 2.0 * batch * c.numHeads() * seq * seq * c.headDim();
    double head = 2 * n * c.vocabSize() * c.hiddenSize();
    double headTotal = head * (2 + (lc.trainLmHead() ? 1 : 0));
    return c.numLayers() * perLayer + headTotal;
  }

  /**
   * Records the gemm calls of one more step through {@link Gemm}'s recorder (the very operands,
   * views, flags and outputs) and times replaying exactly those calls back to back, nothing else:
   * best of 3. Replaying overwrites the state's activations, so it runs after the measured steps.
   */
  static double gemmReplay(
      LlamaWeights w, LoraAdapter ad, LlamaState s, int batch, int seq, int[] ids) {
    List<Gemm.Call> calls = new ArrayList<>();
    Gemm.record((call, nanos) -> calls.add(call));
    try {
      Llama.forward(w, ad, s, new Batch(batch, seq, ids, null, ids, null, 0, true));
      Llama.backward(w, ad, s, 1.0);
    } finally {
      Gemm.record(null);
    }
    double best = Double.MAX_VALUE;
    for (int it = 0; it < 3; it++) {
      long t0 = System.nanoTime();
      for (Gemm.Call call : calls) {
        call.run();
      }
      best = Math.min(best, (System.nanoTime() - t0) / 1e9);
    }
    return best;
  }

  /** Cores other processes may use during a step before it no longer counts as measured idle. */
  private static final double QUIET_OTHERS = 0.1;

  /**
   * CPU seconds the whole machine spent busy since boot (/proc/stat, all cores; NaN elsewhere):
   * minus this process's CPU time it tells how much of the two cores other processes took while a
   * step ran, which on a shared build box decides the step time more than the code does.
   */
  private static double machineBusySeconds() {
    try {
      String[] f = Files.readAllLines(Path.of("/proc/stat")).get(0).trim().split("\\s+");
      long busy = 0;
      for (int i = 1; i < f.length && i <= 8; i++) {
        if (i != 4 && i != 5) { // user nice system [idle iowait] irq softirq steal
          busy += Long.parseLong(f[i]);
        }
      }
      return busy / 100.0; // USER_HZ
    } catch (java.io.IOException | RuntimeException e) {
      return Double.NaN;
    }
  }

  /**
   * CPU time of the whole process (all threads: OpenBLAS's, ND4J's OpenMP pool, the fork-join pool
   * of the Java kernels); above wall x cores-in-use it shows threads burning time waiting.
   */
  private static long processCpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }

  /** ND4J's CPU allocations bypass javacpp's counters, so track the process RSS instead. */
  private static void trackOffHeap() {
    peakRss = Math.max(peakRss, Pointer.physicalBytes());
  }

  private static long peakHeap() {
    long sum = 0;
    for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
      if (pool.getType() == MemoryType.HEAP && pool.getPeakUsage() != null) {
        sum += pool.getPeakUsage().getUsed();
      }
    }
    return sum;
  }
}
