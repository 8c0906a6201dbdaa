package dev.danlu.bench;

import dev.danlu.train.checkpoint.VocabResize;
import dev.danlu.train.comm.LocalCommunicator;
import dev.danlu.train.lora.AdaLoraConfig;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.optim.AdamW;
import dev.danlu.train.optim.DynamicLossScaler;
import dev.danlu.train.optim.LrSchedule;
import dev.danlu.train.recipe.AdaLoraStep;
import dev.danlu.train.recipe.Objective;
import dev.danlu.train.recipe.StepRunner;
import dev.danlu.train.zero.Zero2Optimizer;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * AdaLoRA's cost against LoRA at the same initial rank, on the 7B-shaped layer (LLaMA-2-7B: dim
 * 4096, FFN 11008, 32 heads; one layer, a small vocabulary so the layer dominates), with the
 * trainer's own step (StepRunner: forward+backward, ZeRO-2 AdamW, N=1) and, for AdaLoRA, its
 * per-step extras: A ⊙ E and the orthogonality regulariser before the step (inside the step time)
 * and the rank allocator after it (gradient tap, sensitivity EMAs, a mask every step here: deltaT
 * 1, the worst case). Steps alternate between the two adapters; prints medians and the allocator's
 * share.
 *
 * <pre>bench/run.sh AdaLoraStepBench [seq r iterations]</pre>
 */
public final class AdaLoraStepBench {
  private AdaLoraStepBench() {}

  public static void main(String[] args) throws Exception {
    int seq = TrainStepBench.arg(args, 0, 128);
    int r = TrainStepBench.arg(args, 1, 12);
    int iters = TrainStepBench.arg(args, 2, 5);
    int vocab = 1000;
    LlamaConfig c = new LlamaConfig(4096, 11008, 1, 32, 32, vocab, 1e-5, 1e4, null, false, 4096);
    LlamaWeights w = LlamaWeights.random(c, 1, DataType.FLOAT);
    LoraConfig lc = new LoraConfig(r, 32, 0.05, LoraConfig.allTargets(), false, false, 1);
    LoraAdapter lora = LoraAdapter.init(lc, w);
    AdaLoraConfig ac = new AdaLoraConfig(r, Math.max(1, r * 2 / 3), 0, 0, 1, 0.85, 0.85, 0.5, 1000);
    LoraAdapter ada = LoraAdapter.initAdaLora(lc, ac, w, vocab, VocabResize.Init.NORMAL);
    StepRunner loraRunner = runner(c, w, lora);
    StepRunner adaRunner = runner(c, w, ada);
    AdaLoraStep allocator = new AdaLoraStep(adaRunner, ada);
    SplittableRandom rnd = new SplittableRandom(3);
    double[] loraMs = new double[iters];
    double[] adaMs = new double[iters];
    double[] allocMs = new double[iters];
    for (int i = -1; i < iters; i++) {
      int[] ids = new int[seq];
      for (int t = 0; t < seq; t++) {
        ids[t] = rnd.nextInt(vocab);
      }
      Batch b = new Batch(1, seq, ids, null, ids, new long[] {i + 1}, i + 1, true);
      long t0 = System.nanoTime();
      loraRunner.step(List.of(b), 1.0);
      long t1 = System.nanoTime();
      Zero2Optimizer.StepResult res = adaRunner.step(List.of(b), 1.0).result();
      long t2 = System.nanoTime();
      allocator.afterStep(i + 1, res);
      long t3 = System.nanoTime();
      if (i >= 0) {
        loraMs[i] = (t1 - t0) / 1e6;
        adaMs[i] = (t3 - t1) / 1e6;
        allocMs[i] = (t3 - t2) / 1e6;
      }
    }
    double l = TrainStepBench.median(loraMs);
    double a = TrainStepBench.median(adaMs);
    double al = TrainStepBench.median(allocMs);
    System.out.printf(
        Locale.ROOT,
        "7B-shaped layer (dim 4096, FFN 11008), seq %d, all 7 projections, rank %d:"
            + " %d LoRA / %d AdaLoRA trainables%n",
        seq,
        r,
        loraRunner.flat().total(),
        adaRunner.flat().total());
    System.out.printf(
        Locale.ROOT,
        "LoRA step %.0f ms; AdaLoRA step %.0f ms = %.3fx, of which the rank allocator %.1f ms"
            + " (%.1f%% of the AdaLoRA step) (medians of %d)%n",
        l,
        a,
        a / l,
        al,
        100 * al / a,
        iters);
  }

  private static StepRunner runner(LlamaConfig c, LlamaWeights w, LoraAdapter ad) {
    return new StepRunner(
        LocalCommunicator.group(1).get(0),
        c,
        w,
        ad,
        Objective.CAUSAL_LM,
        new Zero2Optimizer.Config(
            AdamW.huggingFaceDefaults(), 2e-4, 0.0, 1.0, 16 << 20, LrSchedule.constant()),
        DynamicLossScaler.disabled(),
        false,
        false);
  }
}
