package dev.danlu.bench;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.Llama;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.tensor.Backend;
import dev.danlu.train.tensor.Gemm;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Why the 7B layer's step runs its gemms slower than the gemm peak: records every matrix product of
 * one real training step (the very operands, views, flags, alpha/beta and output arrays, through
 * {@link Gemm}'s recorder) with its wall time inside the step, then replays each call alone on the
 * same arrays (best of 3) and prints, per distinct call (shape, flags, beta, layout), the in-step
 * and isolated GFLOP/s next to the peak gemm measured in the same run.
 *
 * <p>In-step much slower than isolated points at interference from the rest of the step (threads,
 * caches); isolated much slower than the peak points at the call itself (shape, layout, copies).
 *
 * <p>Run: {@code bench/run.sh ModelBenchGemms [steps]}.
 */
public final class ModelBenchGemms {
  private ModelBenchGemms() {}

  /** A recorded call, its time in the step, and its time when run again right after itself. */
  private record Timed(Gemm.Call call, long nanos, long againNanos) {
    double flops() {
      long[] sa = call.a().shape();
      long[] sc = call.c().shape();
      long k = call.transA() ? sa[sa.length - 2] : sa[sa.length - 1];
      long batch = call.batched() ? sc[0] : 1;
      return 2.0 * batch * sc[sc.length - 2] * sc[sc.length - 1] * k;
    }

    String key() {
      return (call.batched() ? "bmm " : "gemm ")
          + desc(call.a())
          + (call.transA() ? "^T" : "")
          + " x "
          + desc(call.b())
          + (call.transB() ? "^T" : "")
          + " -> "
          + desc(call.c())
          + (call.beta() != 0 ? " +=" : "")
          + (call.alpha() != 1 ? " a=" + (float) call.alpha() : "");
    }

    /** The same through ND4J's op (Nd4j.gemm / Nd4j.matmul), as the step did before Gemm. */
    long replayNd4j() {
      boolean was = Gemm.direct(false);
      try {
        return replay(call);
      } finally {
        Gemm.direct(was);
      }
    }
  }

  /** Runs the call again through {@link Gemm} with the recorder off; returns its wall time. */
  private static long replay(Gemm.Call call) {
    Gemm.Recorder r = Gemm.recorder();
    Gemm.record(null);
    long t0 = System.nanoTime();
    call.run();
    long dt = System.nanoTime() - t0;
    Gemm.record(r);
    return dt;
  }

  private static String desc(INDArray x) {
    String s = Arrays.toString(x.shape()).replace(" ", "");
    boolean contiguous = x.ordering() == 'c' && x.elementWiseStride() == 1;
    return contiguous ? s : s + x.ordering() + Arrays.toString(x.stride()).replace(" ", "");
  }

  private static void print(double[] v, String what) {
    System.out.printf(
        "%4d %7.1fms %7.1fms %7.1fms %7.1fms %7.1f %7.1f %7.1f %7.1f  %s%n",
        (int) v[0],
        1e3 * v[1],
        1e3 * v[2],
        1e3 * v[3],
        1e3 * v[4],
        v[5] / v[1] / 1e9,
        v[5] / v[2] / 1e9,
        v[5] / v[3] / 1e9,
        v[5] / v[4] / 1e9,
        what);
  }

  public static void main(String[] args) {
    Backend.select();
    int steps = args.length > 0 ? Math.max(2, Integer.parseInt(args[0])) : 3;
    double peak = ModelBench.gemmPeak();
    LlamaConfig c = new LlamaConfig(4096, 11008, 1, 32, 32, 256, 1e-5, 10000, null, false, 4096);
    LlamaWeights w = LlamaWeights.random(c, 1, DataType.FLOAT);
    LoraConfig lc = new LoraConfig(64, 128, 0.05, LoraConfig.allTargets(), false, false, 1);
    LoraAdapter ad = LoraAdapter.init(lc, w);
    int seq = 512;
    LlamaState s = new LlamaState(c, 1, seq, lc, false, DataType.FLOAT);
    int[] ids = new int[seq];
    for (int i = 0; i < seq; i++) {
      ids[i] = (i * 31) % c.vocabSize();
    }
    List<Timed> calls = new ArrayList<>();
    double bestStep = Double.MAX_VALUE;
    for (int i = 0; i <= steps; i++) { // step 0 warms up; the last step is the one recorded
      if (i == steps) {
        // each call is run a second time right after itself: the pair sees the same machine load,
        // so (first - again) is what the step's context costs that call
        Gemm.record((call, ns) -> calls.add(new Timed(call, ns, replay(call))));
      }
      Batch batch = new Batch(1, seq, ids, null, ids, null, i, true);
      long t0 = System.nanoTime();
      Llama.forward(w, ad, s, batch);
      Llama.backward(w, ad, s, 1.0);
      double dt = (System.nanoTime() - t0) / 1e9;
      Gemm.record(null);
      System.out.printf("step %d: %.3f s%n", i, dt);
      if (i > 0 && i < steps) {
        bestStep = Math.min(bestStep, dt);
      }
    }
    // count, in-step s, again s, isolated s, flops
    Map<String, double[]> rows = new LinkedHashMap<>();
    for (Timed call : calls) {
      double iso = Double.MAX_VALUE;
      double isoNd4j = Double.MAX_VALUE;
      for (int r = 0; r < 3; r++) { // alternating, so that both see the same machine load
        iso = Math.min(iso, replay(call.call()) / 1e9);
        isoNd4j = Math.min(isoNd4j, call.replayNd4j() / 1e9);
      }
      double[] row = rows.computeIfAbsent(call.key(), k -> new double[6]);
      row[0]++;
      row[1] += call.nanos() / 1e9;
      row[2] += call.againNanos() / 1e9;
      row[3] += iso;
      row[4] += isoNd4j;
      row[5] += call.flops();
    }
    double[] total = new double[6];
    System.out.printf(
        "%nper distinct call of the recorded step (gemm peak %.1f GFLOP/s):%n", peak / 1e9);
    System.out.printf(
        "%4s %9s %9s %9s %9s %7s %7s %7s %7s  %s%n",
        "n", "in-step", "again", "isolated", "iso nd4j", "GF/s in", "again", "iso", "nd4j", "call");
    rows.entrySet().stream()
        .sorted((x, y) -> Double.compare(y.getValue()[1], x.getValue()[1]))
        .forEach(
            e -> {
              double[] v = e.getValue();
              for (int i = 0; i < v.length; i++) {
                total[i] += v[i];
              }
              print(v, e.getKey());
            });
    print(total, "all gemm calls");
    // the recorded step ran every call twice, so compare with the best unrecorded step
    System.out.printf(
        "%.1f GFLOP in gemm, %.3f s in-step = %.1f%% of the best unrecorded step (%.3f s)%n",
        total[5] / 1e9, total[1], 100 * total[1] / bestStep, bestStep);
  }
}
