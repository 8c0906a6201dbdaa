package dev.danlu.train.lora;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * AdaLoRA's rank allocator (PEFT's RankAllocator and AdaLoraModel.update_and_allocate), run after
 * each optimizer step with the step's gradient (the one the optimizer applied: averaged over
 * micro-batches and ranks, clipped) and the updated parameters:
 *
 * <ol>
 *   <li>while {@code step < total_step - tfinal}: per entry of every A, B, E, the sensitivity I =
 *       |p · g| is smoothed, Ī ← β₁ Ī + (1 − β₁) I, with its uncertainty Ū ← β₂ Ū + (1 − β₂) |I −
 *       Ī|;
 *   <li>the budget follows a cubic schedule: all {@code init_r × targets} triplets until {@code
 *       tinit}, then {@code target + (init − target) (1 − (step − tinit) / (total_step − tfinal −
 *       tinit))³} (floored), {@code target_r × targets} at the end;
 *   <li>every {@code deltaT} steps in between, and once at {@code total_step − tfinal}, the score
 *       of triplet i of a module, s(E_i) + mean_j s(A_ij) + mean_o s(B_oi) with s = Ī · Ū, is
 *       ranked over all modules, and every E_i whose score is at most the (init − budget)-th
 *       smallest is set to zero (the rank pattern); the smoothed scores are then reset;
 *   <li>after {@code total_step − tfinal}, the final pattern masks E after every step.
 * </ol>
 *
 * Every rank runs it on the same all-reduced gradient and the same replicated parameters in the
 * same order, so every rank masks the same entries. {@code step} is the 0-based index of the
 * optimizer step just taken (PEFT's examples pass their loop counter).
 */
public final class RankAllocator {
  private final LoraAdapter ad;
  private final AdaLoraConfig cfg;
  private final int initBudget;
  private final int targetBudget;
  // per trainable AdaLoRA tensor (PEFT key): smoothed sensitivity and uncertainty
  private final Map<String, float[]> expIpt = new LinkedHashMap<>();
  private final Map<String, float[]> expUnc = new LinkedHashMap<>();

  public RankAllocator(LoraAdapter ad) {
    if (ad.svd == null) {
      throw new IllegalArgumentException("the rank allocator needs an AdaLoRA adapter");
    }
    this.ad = ad;
    this.cfg = ad.svd;
    int targets = 0;
    for (INDArray[] row : ad.loraA) {
      for (INDArray a : row) {
        targets += a == null ? 0 : 1;
      }
    }
    this.initBudget = targets * ad.config.rank();
    this.targetBudget = targets * cfg.targetR();
    for (LoraAdapter.NamedParam p : svdParams()) {
      expIpt.put(p.name(), new float[p.size()]);
      expUnc.put(p.name(), new float[p.size()]);
    }
  }

  /** The budget (kept triplets over all modules) and whether to mask, at {@code step}. */
  public long[] budgetSchedule(long step) {
    long tinit = cfg.tinit();
    long tfinal = cfg.tfinal();
    long total = cfg.totalStep();
    if (step <= tinit) {
      return new long[] {initBudget, 0};
    }
    if (step > total - tfinal) {
      return new long[] {targetBudget, 1};
    }
    double mul = 1 - (double) (step - tinit) / (total - tfinal - tinit);
    long budget = (long) ((initBudget - targetBudget) * (mul * mul * mul) + targetBudget);
    return new long[] {budget, step % cfg.deltaT() == 0 ? 1 : 0};
  }

  /**
   * Runs the allocator after optimizer step {@code step}; {@code grad} gives the step's gradient of
   * each AdaLoRA tensor by its PEFT key. Returns true when it changed E (the caller then copies E
   * into the optimizer's parameters).
   */
  public boolean updateAndAllocate(long step, Function<String, float[]> grad) {
    long end = (long) cfg.totalStep() - cfg.tfinal();
    if (step < end) {
      updateIpt(grad);
      long[] b = budgetSchedule(step);
      if (b[1] == 1) {
        maskToBudget(b[0]);
        return true;
      }
      return false;
    }
    if (step == end) {
      maskToBudget(budgetSchedule(step)[0]);
      for (float[] a : expIpt.values()) {
        Arrays.fill(a, 0f);
      }
      for (float[] a : expUnc.values()) {
        Arrays.fill(a, 0f);
      }
      return true;
    }
    if (ad.rankPattern == null) {
      return false; // PEFT would fail here (no pattern yet): nothing to mask with
    }
    applyPattern();
    return true;
  }

  private void updateIpt(Function<String, float[]> grad) {
    float b1 = (float) cfg.beta1();
    float b2 = (float) cfg.beta2();
    for (LoraAdapter.NamedParam p : svdParams()) {
      float[] v = p.value().reshape(-1).toFloatVector();
      float[] g = grad.apply(p.name());
      float[] ei = expIpt.get(p.name());
      float[] eu = expUnc.get(p.name());
      for (int i = 0; i < v.length; i++) {
        float ipt = Math.abs(v[i] * g[i]);
        ei[i] = b1 * ei[i] + (1 - b1) * ipt;
        eu[i] = b2 * eu[i] + (1 - b2) * Math.abs(ipt - ei[i]);
      }
    }
  }

  /** The triplet scores of one target, length r. */
  private float[] tripletScores(int l, LoraModule m) {
    int r = ad.config.rank();
    float[] a = score(LoraAdapter.adaLoraKey(l, m, "lora_A"));
    float[] b = score(LoraAdapter.adaLoraKey(l, m, "lora_B"));
    float[] e = score(LoraAdapter.adaLoraKey(l, m, "lora_E"));
    int in = a.length / r;
    int out = b.length / r;
    float[] s = new float[r];
    for (int i = 0; i < r; i++) {
      double sa = 0;
      for (int j = 0; j < in; j++) {
        sa += a[i * in + j];
      }
      double sb = 0;
      for (int o = 0; o < out; o++) {
        sb += b[o * r + i];
      }
      // PEFT: ipt_E + (mean over A's row + mean over B's column)
      s[i] = e[i] + ((float) (sa / in) + (float) (sb / out));
    }
    return s;
  }

  private float[] score(String name) {
    float[] ei = expIpt.get(name);
    float[] eu = expUnc.get(name);
    float[] s = new float[ei.length];
    for (int i = 0; i < s.length; i++) {
      s[i] = ei[i] * eu[i];
    }
    return s;
  }

  private void maskToBudget(long budget) {
    int r = ad.config.rank();
    List<float[]> scores = new ArrayList<>();
    float[] all = new float[initBudget];
    int n = 0;
    for (int l = 0; l < ad.loraA.length; l++) {
      for (LoraModule m : LoraModule.values()) {
        if (ad.loraA[l][m.ordinal()] != null) {
          float[] s = tripletScores(l, m);
          scores.add(s);
          System.arraycopy(s, 0, all, n, r);
          n += r;
        }
      }
    }
    int k = (int) (initBudget - budget);
    // torch.kthvalue(k): the k-th smallest; k = 0 (nothing to prune) masks nothing
    float threshold = Float.NEGATIVE_INFINITY;
    if (k > 0) {
      float[] sorted = all.clone();
      Arrays.sort(sorted);
      threshold = sorted[k - 1];
    }
    boolean[][][] pattern = new boolean[ad.loraA.length][LoraModule.values().length][];
    int t = 0;
    for (int l = 0; l < ad.loraA.length; l++) {
      for (LoraModule m : LoraModule.values()) {
        if (ad.loraA[l][m.ordinal()] != null) {
          float[] s = scores.get(t++);
          boolean[] keep = new boolean[r];
          for (int i = 0; i < r; i++) {
            keep[i] = !(s[i] <= threshold);
          }
          pattern[l][m.ordinal()] = keep;
        }
      }
    }
    ad.rankPattern = pattern;
    applyPattern();
  }

  /** E_i = 0 wherever the pattern drops triplet i; A ⊙ E follows. */
  private void applyPattern() {
    for (int l = 0; l < ad.loraA.length; l++) {
      for (int m = 0; m < ad.loraA[l].length; m++) {
        boolean[] keep = ad.rankPattern[l][m];
        if (keep == null) {
          continue;
        }
        for (int i = 0; i < keep.length; i++) {
          if (!keep[i]) {
            ad.loraE[l][m].putScalar(i, 0, 0.0);
          }
        }
      }
    }
    ad.syncSvd();
  }

  /** The AdaLoRA tensors (A, B, E of every target) among the adapter's trainables. */
  private List<LoraAdapter.NamedParam> svdParams() {
    List<LoraAdapter.NamedParam> out = new ArrayList<>();
    for (LoraAdapter.NamedParam p : ad.trainable()) {
      if (p.name().endsWith(".lora_A")
          || p.name().endsWith(".lora_B")
          || p.name().endsWith(".lora_E")) {
        out.add(p);
      }
    }
    return out;
  }

  /** The smoothed sensitivity and uncertainty by tensor, for checkpoints (live arrays). */
  public Map<String, float[]> expAvgIpt() {
    return expIpt;
  }

  public Map<String, float[]> expAvgUnc() {
    return expUnc;
  }

  /** Total triplets at the start and at the end. */
  public int initBudget() {
    return initBudget;
  }

  public int targetBudget() {
    return targetBudget;
  }
}
