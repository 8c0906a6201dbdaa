package dev.danlu.train.recipe;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.Llama;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import java.util.function.IntConsumer;
import java.util.function.LongFunction;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * PPO's loss on one mini-batch of rollouts through the model (TRL's {@code PPOTrainer.loss}, the
 * arithmetic in {@link PpoMath}): the policy's new log-probability of each response token and the
 * value head's value at the position that predicts it, against the rollout's old log-probabilities,
 * old values, advantages and returns; backward through both the LM head and the value head. Rows
 * are query + response with labels -100 except on response tokens; position p of a row carries the
 * data of token p + 1. Rollout data is looked up by each row's sample id. The rollouts come from
 * {@link PpoRollouts}, the loop around it from {@link PpoIterations} ({@code stage: ppo}).
 */
public final class PpoObjective implements Objective, ObjectiveMetrics {
  /** TRL's logged names (means per mini-batch over the optimizer steps since the last log). */
  public static final java.util.List<String> METRICS =
      java.util.List.of(
          "ppo/loss/policy", "ppo/loss/value", "ppo/policy/clipfrac", "ppo/policy/approxkl");

  private final double[] sums = new double[METRICS.size() + 1];

  /** A rollout's data per position of its row (only positions predicting a response token). */
  public record Rollout(
      double[] oldLogprobs, double[] oldValues, double[] advantages, double[] returns) {}

  private final ValueHead head;
  private final INDArray dWeight;
  private final INDArray dBias;
  private final LongFunction<Rollout> rollouts;
  private final double cliprange;
  private final double cliprangeValue;
  private final double vfCoef;
  private double[] dLogp; // per position of the last forward
  private double[] dValue;
  private PpoMath.Loss last;

  public PpoObjective(
      ValueHead head,
      INDArray[] headGrads,
      LongFunction<Rollout> rollouts,
      double cliprange,
      double cliprangeValue,
      double vfCoef) {
    this.head = head;
    this.dWeight = headGrads[0];
    this.dBias = headGrads[1];
    this.rollouts = rollouts;
    this.cliprange = cliprange;
    this.cliprangeValue = cliprangeValue;
    this.vfCoef = vfCoef;
  }

  @Override
  public double forward(LlamaWeights w, LoraAdapter ad, LlamaState s, Batch b) {
    Llama.forwardLogits(w, ad, s, b);
    int rows = b.batch() * b.seq();
    double[] lp = new double[rows];
    Llama.tokenLogProbs(s, b.labels(), lp);
    INDArray h = s.normedHidden();
    float[] vw = head.weight().reshape(-1).toFloatVector();
    double vb = head.bias().getDouble(0);
    int seq = b.seq();
    double[][] oldLp = new double[b.batch()][];
    double[][] oldV = new double[b.batch()][];
    double[][] adv = new double[b.batch()][];
    double[][] ret = new double[b.batch()][];
    double[][] newLp = new double[b.batch()][seq];
    double[][] newV = new double[b.batch()][seq];
    int[][] mask = new int[b.batch()][seq];
    for (int i = 0; i < b.batch(); i++) {
      Rollout r = rollouts.apply(b.sampleIds()[i]);
      oldLp[i] = r.oldLogprobs();
      oldV[i] = r.oldValues();
      adv[i] = r.advantages();
      ret[i] = r.returns();
      for (int t = 0; t < seq; t++) {
        int n = i * seq + t;
        if (Double.isNaN(lp[n])) {
          continue;
        }
        mask[i][t] = 1;
        newLp[i][t] = lp[n];
        float[] x = h.getRow(n).toFloatVector();
        double v = vb;
        for (int k = 0; k < vw.length; k++) {
          v += (double) vw[k] * x[k];
        }
        newV[i][t] = v;
      }
    }
    last =
        PpoMath.loss(oldLp, oldV, newLp, newV, adv, ret, mask, cliprange, cliprangeValue, vfCoef);
    sums[0] += last.policyLoss();
    sums[1] += last.valueLoss();
    sums[2] += last.clipFraction();
    sums[3] += last.approxKl();
    sums[METRICS.size()] += 1;
    dLogp = new double[rows];
    dValue = new double[rows];
    for (int i = 0; i < b.batch(); i++) {
      for (int t = 0; t < seq; t++) {
        dLogp[i * seq + t] = last.dLogprobs()[i][t];
        dValue[i * seq + t] = last.dValues()[i][t];
      }
    }
    return last.loss();
  }

  @Override
  public void backward(
      LlamaWeights w, LoraAdapter ad, LlamaState s, double scale, IntConsumer gradsFinal) {
    INDArray h = s.normedHidden();
    INDArray dNormed = Nd4j.zeros(h.dataType(), h.shape());
    float[] vw = head.weight().reshape(-1).toFloatVector();
    double[] dw = new double[vw.length];
    double db = 0;
    double[] dLp = new double[dLogp.length];
    for (int n = 0; n < dLogp.length; n++) {
      dLp[n] = dLogp[n] * scale;
      double g = dValue[n] * scale;
      if (g == 0) {
        continue;
      }
      float[] x = h.getRow(n).toFloatVector();
      float[] dx = new float[vw.length];
      for (int k = 0; k < vw.length; k++) {
        dw[k] += g * x[k];
        dx[k] = (float) (g * vw[k]);
      }
      db += g;
      dNormed.putRow(n, Nd4j.create(dx, new long[] {1, vw.length}, h.dataType()));
    }
    float[] dwf = new float[dw.length];
    for (int k = 0; k < dw.length; k++) {
      dwf[k] = (float) dw[k];
    }
    // the head's gradients first: backward reports depth numLayers (the head's) final at once
    dWeight.addi(Nd4j.create(dwf, dWeight.shape(), dWeight.dataType()));
    dBias.addi(db);
    Llama.tokenLogProbsBackward(s, dLp);
    Llama.backwardFromLogitAndHiddenGrads(w, ad, s, dNormed, gradsFinal);
  }

  @Override
  public boolean hasTargets(Batch b) {
    return b.labelTokens() > 0;
  }

  @Override
  public java.util.List<String> metricNames() {
    return METRICS;
  }

  @Override
  public double[] drainMetrics(boolean train) {
    double[] out = sums.clone();
    java.util.Arrays.fill(sums, 0);
    return out;
  }

  /** The loss terms and statistics of the last forward. */
  public PpoMath.Loss lastLoss() {
    return last;
  }
}
