package dev.danlu.bench;

import dev.danlu.train.comm.LocalCommunicator;
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
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Optimizer step vs forward+backward of the same training step, with the trainer's own pieces
 * (PretrainRecipe's loop body on one rank): one micro-batch forward+backward through LLaMA with
 * LoRA on all projections and full embed_tokens/lm_head, then the optimizer part — gradient
 * hand-over into the flat buffer, ZeRO-2 AdamW step (N=1: no communication; the ring's cost is
 * CommBench's), copy-back. Prints medians and the ratio.
 *
 * <p>With {@code ranks} >= 2 it instead compares overlap_comm on and off in one run: that many
 * ranks as threads of this JVM joined by a real TCP ring on 127.0.0.1, steps alternating between
 * reducing gradients after backward and during it, and prints per mode the forward+backward time,
 * the optimizer step, how long that step waited for the gradient reduce-scatter (all of it without
 * overlap, the remainder with it), and the whole step. Threads share the JVM's ND4J pool, so on a
 * small host the ranks also compete for cores, as co-located executors do.
 *
 * <pre>bench/run.sh TrainStepBench [dim layers vocab seq lora_r iterations ranks]</pre>
 */
public final class TrainStepBench {
  private TrainStepBench() {}

  public static void main(String[] args) throws Exception {
    int dim = arg(args, 0, 512);
    int layers = arg(args, 1, 4);
    int vocab = arg(args, 2, 8000);
    int seq = arg(args, 3, 256);
    int r = arg(args, 4, 16);
    int iters = arg(args, 5, 9);
    int ranks = arg(args, 6, 1);
    int heads = Math.max(1, dim / 64);
    LlamaConfig c =
        new LlamaConfig(
            dim, dim * 8 / 3 / 16 * 16, layers, heads, heads, vocab, 1e-5, 1e4, null, false, seq);
    if (ranks > 1) {
      OverlapBench.run(c, seq, r, iters, ranks);
      return;
    }
    LlamaWeights w = LlamaWeights.random(c, 1, DataType.FLOAT);
    LoraAdapter ad =
        LoraAdapter.init(
            new LoraConfig(r, 2.0 * r, 0.05, LoraConfig.allTargets(), true, true, 1), w);
    StepRunner runner =
        new StepRunner(
            LocalCommunicator.group(1).get(0),
            c,
            w,
            ad,
            Objective.CAUSAL_LM,
            new Zero2Optimizer.Config(
                AdamW.huggingFaceDefaults(), 2e-4, 0.01, 1.0, 16 << 20, LrSchedule.constant()),
            DynamicLossScaler.disabled(),
            false,
            false);
    SplittableRandom rnd = new SplittableRandom(3);
    double[] fb = new double[iters];
    double[] op = new double[iters];
    double[] hand = new double[iters];
    double[] adam = new double[iters];
    for (int i = -2; i < iters; i++) {
      int[] ids = new int[seq];
      for (int t = 0; t < seq; t++) {
        ids[t] = rnd.nextInt(vocab);
      }
      Batch b = new Batch(1, seq, ids, null, ids, new long[] {i + 2}, i + 2, true);
      // the training loop's own step body (StepRunner), as every recipe runs it
      StepRunner.Outcome o = runner.step(List.of(b), 1.0);
      if (i >= 0) {
        fb[i] = o.forwardBackwardNanos() / 1e6;
        op[i] = o.afterBackwardNanos() / 1e6;
        hand[i] = o.handOverNanos() / 1e6;
        adam[i] = o.optimizerNanos() / 1e6;
      }
    }
    double f = median(fb);
    double o = median(op);
    System.out.printf(
        Locale.ROOT,
        "model dim %d, %d layers, vocab %d, seq %d, LoRA r=%d + embed_tokens + lm_head:"
            + " %d trainable (optimizer state %d bytes)%n",
        dim,
        layers,
        vocab,
        seq,
        r,
        runner.flat().total(),
        runner.optimizer().stateBytes());
    System.out.printf(
        Locale.ROOT,
        "forward+backward (1 x %d tokens): %.1f ms; optimizer (hand-over + ZeRO-2 AdamW N=1 +"
            + " copy-back): %.1f ms = %.1f%% of forward+backward (medians of %d)%n",
        seq,
        f,
        o,
        100 * o / f,
        iters);
    System.out.printf(
        Locale.ROOT,
        "  of which ZeRO-2 step %.1f ms, gradient hand-over + parameter copy-back %.1f ms%n",
        median(adam),
        median(hand));
  }

  static int arg(String[] a, int i, int dflt) {
    return a.length > i ? Integer.parseInt(a[i]) : dflt;
  }

  static double median(double[] v) {
    double[] c = v.clone();
    Arrays.sort(c);
    return c[c.length / 2];
  }
}
