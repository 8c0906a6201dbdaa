package dev.danlu.train.zero;

import dev.danlu.train.comm.Communicator;
import dev.danlu.train.optim.AdamW;
import dev.danlu.train.optim.DynamicLossScaler;
import dev.danlu.train.optim.LrSchedule;
import dev.danlu.train.optim.WeightDecayRule;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * A synthetic training problem for the distributed-optimizer tests: named parameters (HF-style
 * names, so the decay rule applies), per-sample least-squares loss 0.5·(x_s·θ − y_s)² whose
 * gradient each rank computes locally from global sample ids, and a plain single-process AdamW
 * reference over the full flat buffer.
 */
final class LeastSquaresProblem {
  static final String[] NAMES = {
    "layers.0.self_attn.q_proj.lora_A.weight",
    "layers.0.self_attn.q_proj.lora_B.weight",
    "layers.0.mlp.bias",
    "model.norm.weight",
    "lm_head.weight"
  };
  static final int[] LENGTHS = {23, 17, 5, 7, 31}; // 83 in total: divisible by neither 2, 3 nor 4
  static final int GLOBAL_BATCH = 12;
  static final double LR = 0.05;
  static final double WD = 0.1;
  static final double MAX_GRAD_NORM = 7.0;
  static final int TOTAL_STEPS = 10;
  static final float LOSS_SCALE = 1024f;

  private LeastSquaresProblem() {}

  static int total() {
    int t = 0;
    for (int l : LENGTHS) {
      t += l;
    }
    return t;
  }

  static List<NamedParam> initialParams() {
    List<NamedParam> out = new ArrayList<>();
    int k = 0;
    for (int p = 0; p < NAMES.length; p++) {
      float[] d = new float[LENGTHS[p]];
      for (int i = 0; i < d.length; i++, k++) {
        d[i] = (float) (0.5 * Math.cos(1.7 * k + 0.2));
      }
      out.add(new NamedParam(NAMES[p], d, new float[d.length]));
    }
    return out;
  }

  static float x(long sample, int i) {
    return (float) Math.sin(0.013 * (sample + 1) * (i + 1) + 0.3 * i);
  }

  static float y(long sample) {
    return (float) (3 * Math.cos(0.7 * sample));
  }

  /** Adds {@code scale} × ∇ of sample's loss at {@code theta[0, total)} into {@code grad}. */
  static void addSampleGrad(float[] theta, float[] grad, long sample, float scale) {
    int n = total();
    double r = -y(sample);
    for (int i = 0; i < n; i++) {
      r += (double) x(sample, i) * theta[i];
    }
    float rs = (float) r * scale;
    for (int i = 0; i < n; i++) {
      grad[i] += rs * x(sample, i);
    }
  }

  static LrSchedule schedule() {
    return LrSchedule.cosine(LrSchedule.warmupSteps(TOTAL_STEPS, 0.1, 0), TOTAL_STEPS);
  }

  static Zero2Optimizer.Config config(int bucketFloats) {
    return new Zero2Optimizer.Config(
        AdamW.huggingFaceDefaults(), LR, WD, MAX_GRAD_NORM, bucketFloats, schedule());
  }

  /** One rank of a ZeRO-2 run: the model's own arrays, the flat buffers and the optimizer. */
  static final class Rank {
    final Communicator comm;
    final FlatParams flat;
    final Zero2Optimizer opt;
    final List<Zero2Optimizer.StepResult> results = new ArrayList<>();

    Rank(Communicator comm, int bucketFloats) {
      this.comm = comm;
      this.flat = FlatParams.of(initialParams(), comm.worldSize(), 4);
      this.opt =
          new Zero2Optimizer(
              comm,
              flat,
              config(bucketFloats),
              new DynamicLossScaler(LOSS_SCALE, 2, 100, 2, 1e-10));
    }

    /** Runs steps [from, to); this rank takes its contiguous share of each global batch. */
    void train(int from, int to, int microBatches, Set<Integer> overflowSteps) {
      int n = comm.worldSize();
      int perRank = GLOBAL_BATCH / n;
      int perMicro = perRank / microBatches;
      for (int step = from; step < to; step++) {
        for (int mb = 0; mb < microBatches; mb++) {
          for (int j = 0; j < perMicro; j++) {
            long sample = (long) step * GLOBAL_BATCH + comm.rank() * perRank + mb * perMicro + j;
            addSampleGrad(flat.params(), flat.grads(), sample, (float) opt.scaler().scale());
          }
        }
        if (overflowSteps.contains(step) && comm.rank() == n - 1) {
          flat.grads()[flat.padded() / n * comm.rank()] = Float.POSITIVE_INFINITY;
        }
        results.add(opt.step(GLOBAL_BATCH));
      }
    }

    float[] params() {
      return java.util.Arrays.copyOf(flat.params(), total());
    }
  }

  /** Plain single-process AdamW on the full flat buffer; steps in {@code skipped} are dropped. */
  static float[] reference(int steps, Set<Integer> skipped) {
    int n = total();
    float[] theta = new float[n];
    List<NamedParam> init = initialParams();
    boolean[] decay = new boolean[n];
    int k = 0;
    for (NamedParam p : init) {
      for (int i = 0; i < p.data().length; i++, k++) {
        theta[k] = p.data()[i];
        decay[k] = WeightDecayRule.decays(p.name());
      }
    }
    float[] m = new float[n];
    float[] v = new float[n];
    AdamW adam = AdamW.huggingFaceDefaults();
    LrSchedule sched = schedule();
    long t = 0;
    for (int step = 0; step < steps; step++) {
      if (skipped.contains(step)) {
        continue;
      }
      float[] g = new float[n];
      for (int s = 0; s < GLOBAL_BATCH; s++) {
        addSampleGrad(theta, g, (long) step * GLOBAL_BATCH + s, 1f);
      }
      double sq = 0;
      for (float x : g) {
        sq += (double) x * x;
      }
      double norm = Math.sqrt(sq) / GLOBAL_BATCH;
      double clip = Math.min(1.0, MAX_GRAD_NORM / (norm + 1e-6));
      float scale = (float) (clip / GLOBAL_BATCH);
      double lr = LR * sched.factor(t);
      t++;
      for (int i = 0; i < n; i++) {
        adam.update(theta, m, v, i, g, i, scale, 1, lr, decay[i] ? WD : 0.0, t);
      }
    }
    return theta;
  }

  static double relativeError(float[] got, float[] want) {
    return dev.danlu.testkit.Floats.relError(got, want);
  }

  static double maxElementRelativeError(float[] got, float[] want) {
    double worst = 0;
    for (int i = 0; i < want.length; i++) {
      worst =
          Math.max(worst, Math.abs((double) got[i] - want[i]) / Math.max(1e-3, Math.abs(want[i])));
    }
    return worst;
  }
}
