package dev.danlu.train.recipe;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.Llama;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * Direct preference optimisation (Rafailov et al. 2023; TRL's {@code DPOTrainer}, {@code
 * loss_type="sigmoid"}) on micro-batches of pairs laid out as TRL concatenates them: rows {@code
 * [0, P)} the chosen responses, rows {@code [P, 2P)} the rejected ones of the same prompts ({@link
 * dev.danlu.train.data.PairBatches}).
 *
 * <pre>
 * z    = (log π(c) − log π(r)) − (log π_ref(c) − log π_ref(r))     log π: summed over response tokens
 * loss = mean over pairs of −(1−ε)·log σ(β z) − ε·log σ(−β z)        ε = dpo_label_smoothing
 * </pre>
 *
 * <p>The reference policy is the same base with the adapter switched off (PEFT's {@code
 * disable_adapter()}, what TRL does when no reference model is given): no LoRA delta and the base
 * model's own embed_tokens / lm_head, not the adapter's trained copies — exactly what PEFT's
 * modules_to_save wrapper returns with adapters disabled. So no second copy of the weights: each
 * micro-batch runs the model twice forward (reference without gradients, then the policy) and
 * backward once. At step 0 (B = 0, copies equal to the base) the policy is the reference and the
 * loss is log 2.
 */
public final class DpoObjective implements Objective, ObjectiveMetrics {
  /** TRL's logged names. */
  public static final List<String> METRICS =
      List.of(
          "rewards/chosen",
          "rewards/rejected",
          "rewards/accuracies",
          "rewards/margins",
          "logps/chosen",
          "logps/rejected");

  private final double beta;
  private final double labelSmoothing;
  private final double[][] sums = new double[2][METRICS.size() + 1]; // [train, eval]
  private double[] dLogp; // dLoss/d log π per row of the last forward (unscaled)

  public DpoObjective(double beta, double labelSmoothing) {
    if (!(beta > 0)) {
      throw new IllegalArgumentException("beta must be > 0, got " + beta);
    }
    if (labelSmoothing < 0 || labelSmoothing > 0.5) {
      throw new IllegalArgumentException(
          "dpo_label_smoothing must be in [0, 0.5], got " + labelSmoothing);
    }
    this.beta = beta;
    this.labelSmoothing = labelSmoothing;
  }

  /** The per-row log-probabilities of the policy and the reference of the last forward. */
  record LogProbs(double[] policy, double[] reference) {}

  private LogProbs last;

  @Override
  public double forward(LlamaWeights w, LoraAdapter ad, LlamaState s, Batch b) {
    int pairs = pairs(b);
    double[] ref = new double[b.batch()];
    double[] pol = new double[b.batch()];
    Llama.forwardLogits(w, null, s, b); // the reference: adapter off
    Llama.sequenceLogProbs(s, b.labels(), ref);
    Llama.forwardLogits(w, ad, s, b); // the policy, last: backward needs its activations
    Llama.sequenceLogProbs(s, b.labels(), pol);
    last = new LogProbs(pol, ref);
    dLogp = new double[b.batch()];
    double[] m = sums[b.train() ? 0 : 1];
    double loss = 0;
    for (int p = 0; p < pairs; p++) {
      double pc = pol[p];
      double pr = pol[pairs + p];
      double bz = beta * ((pc - pr) - (ref[p] - ref[pairs + p]));
      loss += -(1 - labelSmoothing) * logSigmoid(bz) - labelSmoothing * logSigmoid(-bz);
      // d/dz of the pair's loss: β (−(1−ε) σ(−βz) + ε σ(βz)); z rises with π(c), falls with π(r)
      double dz = beta * (-(1 - labelSmoothing) * sigmoid(-bz) + labelSmoothing * sigmoid(bz));
      dLogp[p] = dz / pairs;
      dLogp[pairs + p] = -dz / pairs;
      double rc = beta * (pc - ref[p]);
      double rr = beta * (pr - ref[pairs + p]);
      m[0] += rc;
      m[1] += rr;
      m[2] += rc > rr ? 1 : 0;
      m[3] += rc - rr;
      m[4] += pc;
      m[5] += pr;
    }
    m[METRICS.size()] += pairs;
    return loss / pairs;
  }

  @Override
  public void backward(
      LlamaWeights w, LoraAdapter ad, LlamaState s, double scale, IntConsumer gradsFinal) {
    double[] d = new double[dLogp.length];
    for (int i = 0; i < d.length; i++) {
      d[i] = dLogp[i] * scale;
    }
    Llama.sequenceLogProbsBackward(s, d);
    Llama.backwardFromLogitGrads(w, ad, s, gradsFinal);
  }

  @Override
  public boolean hasTargets(Batch b) {
    return b.labelTokens() > 0;
  }

  /** The log-probabilities of the last forward (tests). */
  LogProbs lastLogProbs() {
    return last;
  }

  @Override
  public List<String> metricNames() {
    return METRICS;
  }

  @Override
  public double[] drainMetrics(boolean train) {
    double[] m = sums[train ? 0 : 1];
    double[] out = m.clone();
    java.util.Arrays.fill(m, 0);
    return out;
  }

  static int pairs(Batch b) {
    if (b.batch() % 2 != 0) {
      throw new IllegalArgumentException(
          "a preference micro-batch holds chosen rows then rejected rows; got an odd "
              + b.batch()
              + " rows");
    }
    return b.batch() / 2;
  }

  /** log σ(x) without overflow. */
  static double logSigmoid(double x) {
    return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
  }

  static double sigmoid(double x) {
    return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
  }
}
