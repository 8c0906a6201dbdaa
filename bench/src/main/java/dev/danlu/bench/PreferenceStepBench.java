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
import dev.danlu.train.recipe.DpoObjective;
import dev.danlu.train.recipe.Objective;
import dev.danlu.train.recipe.RewardObjective;
import dev.danlu.train.recipe.StepRunner;
import dev.danlu.train.recipe.ValueHead;
import dev.danlu.train.zero.Zero2Optimizer;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The preference steps against the SFT step on the same tokens: one micro-batch of P pairs (2P
 * rows, prompt masked, responses labelled) through the training loop's {@link StepRunner} with
 * causal-LM cross-entropy (SFT), the DPO objective (a second, gradient-free forward with the
 * adapter off) and the reward objective (value head, no LM head), interleaved step by step so all
 * three see the same machine noise. Prints ms per step, tokens/s and the ratio to SFT measured in
 * the run.
 *
 * <pre>bench/run.sh PreferenceStepBench [pairs prompt response dim layers vocab steps]
 *   (defaults 4 192 64 512 4 32000 6)</pre>
 */
public final class PreferenceStepBench {
  private PreferenceStepBench() {}

  public static void main(String[] args) {
    int pairs = arg(args, 0, 4);
    int prompt = arg(args, 1, 192);
    int response = arg(args, 2, 64);
    int dim = arg(args, 3, 512);
    int layers = arg(args, 4, 4);
    int vocab = arg(args, 5, 32000);
    int steps = arg(args, 6, 6);
    int seq = prompt + response;
    int rows = 2 * pairs;
    SplittableRandom r = new SplittableRandom(7);
    int[] ids = new int[rows * seq];
    int[] labels = new int[rows * seq];
    for (int p = 0; p < pairs; p++) {
      for (int t = 0; t < seq; t++) {
        int c = t < prompt ? 3 + r.nextInt(vocab - 3) : 3 + r.nextInt(vocab - 3);
        ids[p * seq + t] = c;
        // the rejected response shares the prompt
        ids[(pairs + p) * seq + t] = t < prompt ? c : 3 + r.nextInt(vocab - 3);
      }
    }
    for (int row = 0; row < rows; row++) {
      for (int t = 0; t < seq; t++) {
        labels[row * seq + t] = t < prompt ? -100 : ids[row * seq + t];
      }
    }
    int[] mask = new int[rows * seq];
    Arrays.fill(mask, 1);
    LlamaConfig c =
        new LlamaConfig(
            dim,
            dim * 8 / 3 / 16 * 16,
            layers,
            dim / 64,
            dim / 64,
            vocab,
            1e-5,
            1e4,
            null,
            false,
            4096);
    LlamaWeights w = LlamaWeights.random(c, 1, DataType.FLOAT);
    LoraConfig lc = new LoraConfig(8, 16, 0.05, LoraConfig.allTargets(), false, false, 1);
    String[] names = {"SFT (cross-entropy)", "DPO (sigmoid, adapter-off ref)", "reward model"};
    StepRunner[] runners = new StepRunner[3];
    for (int k = 0; k < 3; k++) {
      LoraAdapter ad = LoraAdapter.init(lc, w);
      Objective o;
      if (k == 0) {
        o = Objective.CAUSAL_LM;
      } else if (k == 1) {
        o = new DpoObjective(0.1, 0.0);
      } else {
        ValueHead head = ValueHead.init(dim, 1);
        o = new RewardObjective(head, head.attachTo(ad));
      }
      runners[k] =
          new StepRunner(
              LocalCommunicator.group(1).get(0),
              c,
              w,
              ad,
              o,
              new Zero2Optimizer.Config(
                  AdamW.huggingFaceDefaults(), 1e-4, 0.0, 1.0, 16 << 20, LrSchedule.constant()),
              DynamicLossScaler.disabled(),
              false,
              false);
    }
    long[] nanos = new long[3];
    for (int s = -1; s < steps; s++) {
      for (int k = 0; k < 3; k++) {
        long[] sample = new long[rows];
        for (int i = 0; i < rows; i++) {
          sample[i] = i;
        }
        Batch b = new Batch(rows, seq, ids, mask, labels, sample, Math.max(s, 0), true);
        long t0 = System.nanoTime();
        runners[k].step(List.of(b), 1.0);
        if (s >= 0) { // step -1 warms up
          nanos[k] += System.nanoTime() - t0;
        }
      }
    }
    System.out.printf(
        Locale.ROOT,
        "model dim %d, %d layers, vocab %d, LoRA r=8 on all projections; %d pairs = %d rows of %d"
            + " tokens (prompt %d, response %d), %d steps each%n",
        dim,
        layers,
        vocab,
        pairs,
        rows,
        seq,
        prompt,
        response,
        steps);
    double sft = nanos[0] / (double) steps;
    for (int k = 0; k < 3; k++) {
      double ms = nanos[k] / (double) steps / 1e6;
      System.out.printf(
          Locale.ROOT,
          "  %-32s %8.1f ms/step  %7.0f tokens/s  %.2fx the SFT step time%n",
          names[k],
          ms,
          rows * seq / (ms / 1e3),
          nanos[k] / (double) steps / sft);
    }
  }

  private static int arg(String[] a, int i, int def) {
    return a.length > i ? Integer.parseInt(a[i]) : def;
  }
}
