package dev.danlu.bench;

import dev.danlu.train.comm.RingListener;
import dev.danlu.train.comm.TcpRingCommunicator;
import dev.danlu.train.comm.TcpRingOptions;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.optim.AdamW;
import dev.danlu.train.optim.DynamicLossScaler;
import dev.danlu.train.optim.LrSchedule;
import dev.danlu.train.recipe.Objective;
import dev.danlu.train.recipe.StepRunner;
import dev.danlu.train.zero.Zero2Optimizer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * TrainStepBench's overlap_comm comparison: N ranks (threads, TCP ring on 127.0.0.1) run
 * PretrainRecipe's step body, alternating overlap on and off step by step so both modes see the
 * same host load; rank 0 prints medians per mode.
 */
final class OverlapBench {
  private OverlapBench() {}

  /** Per step: forward+backward, optimizer step, its wait for the reduce-scatter, whole step. */
  private record Times(
      double[] fb, double[] opt, double[] commWait, double[] background, double[] total) {
    Times(int n) {
      this(new double[n], new double[n], new double[n], new double[n], new double[n]);
    }
  }

  static void run(LlamaConfig c, int seq, int loraR, int iters, int ranks) throws Exception {
    List<RingListener> ls = new ArrayList<>();
    List<String> addrs = new ArrayList<>();
    for (int r = 0; r < ranks; r++) {
      RingListener l = RingListener.bind("127.0.0.1", 0);
      ls.add(l);
      addrs.add(l.address());
    }
    byte[] secret = "overlap-bench".getBytes(StandardCharsets.UTF_8);
    ExecutorService pool = Executors.newFixedThreadPool(ranks);
    try {
      List<Future<TcpRingCommunicator>> joins = new ArrayList<>();
      for (int r = 0; r < ranks; r++) {
        int rank = r;
        joins.add(
            pool.submit(() -> ls.get(rank).join(rank, addrs, secret, TcpRingOptions.defaults())));
      }
      List<TcpRingCommunicator> ring = new ArrayList<>();
      for (Future<TcpRingCommunicator> f : joins) {
        ring.add(f.get());
      }
      try {
        List<Future<Times[]>> runs = new ArrayList<>();
        for (int r = 0; r < ranks; r++) {
          TcpRingCommunicator comm = ring.get(r);
          runs.add(pool.submit(() -> rank(comm, c, seq, loraR, iters)));
        }
        List<Times[]> all = new ArrayList<>();
        for (Future<Times[]> f : runs) {
          all.add(f.get());
        }
        report(c, seq, loraR, iters, ranks, all.get(0));
      } finally {
        ring.forEach(TcpRingCommunicator::close);
      }
    } finally {
      pool.shutdownNow();
    }
  }

  /** One rank; returns {off, on} timings. */
  private static Times[] rank(
      TcpRingCommunicator comm, LlamaConfig c, int seq, int loraR, int iters) {
    int n = comm.worldSize();
    LlamaWeights w = LlamaWeights.random(c, 1, DataType.FLOAT);
    LoraAdapter ad =
        LoraAdapter.init(
            new LoraConfig(loraR, 2.0 * loraR, 0.05, LoraConfig.allTargets(), true, true, 1), w);
    Zero2Optimizer.Config optCfg =
        new Zero2Optimizer.Config(
            AdamW.huggingFaceDefaults(),
            2e-4,
            0.01,
            1.0,
            Math.max(1, (64 << 20) / 4 / n), // reduce_bucket_mb's default
            LrSchedule.constant());
    // the training loop's own step body, overlap_comm switched step by step
    StepRunner runner =
        new StepRunner(
            comm,
            c,
            w,
            ad,
            Objective.CAUSAL_LM,
            optCfg,
            DynamicLossScaler.disabled(),
            false,
            false);
    SplittableRandom rnd = new SplittableRandom(17 + comm.rank());
    Times off = new Times(iters);
    Times on = new Times(iters);
    for (int i = -4; i < 2 * iters; i++) {
      boolean overlap = (i & 1) == 0;
      int[] ids = new int[seq];
      for (int t = 0; t < seq; t++) {
        ids[t] = rnd.nextInt(c.vocabSize());
      }
      Batch b = new Batch(1, seq, ids, null, ids, new long[] {i + 4}, i + 4, true);
      comm.barrier(); // both modes start every step together
      runner.overlap(overlap);
      StepRunner.Outcome o = runner.step(List.of(b), n);
      if (i >= 0) {
        Times into = overlap ? on : off;
        int k = i / 2;
        into.fb[k] = o.forwardBackwardNanos() / 1e6;
        into.opt[k] = o.afterBackwardNanos() / 1e6;
        into.commWait[k] = runner.optimizer().lastCommNanos() / 1e6;
        into.background[k] = runner.optimizer().lastBackgroundNanos() / 1e6;
        into.total[k] = (o.forwardBackwardNanos() + o.afterBackwardNanos()) / 1e6;
      }
    }
    return new Times[] {off, on};
  }

  private static void report(
      LlamaConfig c, int seq, int loraR, int iters, int ranks, Times[] rank0) {
    System.out.printf(
        Locale.ROOT,
        "overlap_comm, %d ranks (threads, TCP ring on 127.0.0.1, direct gradients): dim %d, %d layers, vocab %d,"
            + " seq %d, LoRA r=%d + embed_tokens + lm_head; medians of %d steps per mode, rank 0%n",
        ranks,
        c.hiddenSize(),
        c.numLayers(),
        c.vocabSize(),
        seq,
        loraR,
        iters);
    System.out.println(
        "| overlap_comm | forward+backward ms | optimizer step ms | of which waiting for the"
            + " gradient reduce-scatter ms | reduce-scatter on the communication thread ms |"
            + " whole step ms |");
    System.out.println("|---|---|---|---|---|---|");
    String[] names = {"off", "on"};
    for (int m = 0; m < 2; m++) {
      Times t = rank0[m];
      System.out.printf(
          Locale.ROOT,
          "| %s | %.1f | %.1f | %.1f | %.1f | %.1f |%n",
          names[m],
          TrainStepBench.median(t.fb),
          TrainStepBench.median(t.opt),
          TrainStepBench.median(t.commWait),
          TrainStepBench.median(t.background),
          TrainStepBench.median(t.total));
    }
    double offStep = TrainStepBench.median(rank0[0].total);
    double onStep = TrainStepBench.median(rank0[1].total);
    System.out.printf(
        Locale.ROOT,
        "exposed gradient communication: %.1f ms off -> %.1f ms on; step %.1f -> %.1f ms"
            + " (%.0f%% of the step saved)%n",
        TrainStepBench.median(rank0[0].commWait),
        TrainStepBench.median(rank0[1].commWait),
        offStep,
        onStep,
        100 * (offStep - onStep) / offStep);
  }
}
