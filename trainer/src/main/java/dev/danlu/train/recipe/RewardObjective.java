package dev.danlu.train.recipe;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.Llama;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import java.util.List;
import java.util.function.IntConsumer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The pairwise reward-model loss (InstructGPT; TRL's {@code RewardTrainer}, LLaMA-Factory's {@code
 * stage: rm}) on micro-batches of pairs (rows {@code [0, P)} chosen, {@code [P, 2P)} rejected): the
 * reward of a sequence is the {@link ValueHead} on the normed last hidden state of its last non-pad
 * token, and the loss is the mean over pairs of {@code −log σ(r_chosen − r_rejected)}. The LM head
 * is not used.
 */
public final class RewardObjective implements Objective, ObjectiveMetrics {
  public static final List<String> METRICS =
      List.of("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins");

  private final ValueHead head;
  private final INDArray dWeight; // null when only scoring
  private final INDArray dBias;
  private final double[][] sums = new double[2][METRICS.size() + 1];
  private int[] lastToken; // per row of the last forward: its index in the flat [rows] layout
  private double[] dReward; // dLoss/dr per row of the last forward (unscaled)

  /** For training: {@code grads} from {@link ValueHead#attachTo}. */
  public RewardObjective(ValueHead head, INDArray[] grads) {
    this.head = head;
    this.dWeight = grads == null ? null : grads[0];
    this.dBias = grads == null ? null : grads[1];
  }

  /** For scoring only (no gradients). */
  public RewardObjective(ValueHead head) {
    this(head, null);
  }

  /** The reward of each row of {@code b}: the head at the row's last non-pad token. */
  public double[] rewards(LlamaWeights w, LoraAdapter ad, LlamaState s, Batch b) {
    Llama.forwardHidden(w, ad, s, b);
    INDArray h = s.normedHidden();
    float[] vw = head.weight().reshape(-1).toFloatVector();
    double vb = head.bias().getDouble(0);
    lastToken = new int[b.batch()];
    double[] r = new double[b.batch()];
    for (int row = 0; row < b.batch(); row++) {
      int t = b.seq() - 1;
      if (b.attentionMask() != null) {
        while (t > 0 && b.attentionMask()[row * b.seq() + t] == 0) {
          t--; // right padding: the last real token
        }
      }
      int n = row * b.seq() + t;
      lastToken[row] = n;
      float[] x = h.getRow(n).toFloatVector();
      double sum = vb;
      for (int i = 0; i < vw.length; i++) {
        sum += (double) vw[i] * x[i];
      }
      r[row] = sum;
    }
    return r;
  }

  @Override
  public double forward(LlamaWeights w, LoraAdapter ad, LlamaState s, Batch b) {
    int pairs = DpoObjective.pairs(b);
    double[] r = rewards(w, ad, s, b);
    dReward = new double[b.batch()];
    double[] m = sums[b.train() ? 0 : 1];
    double loss = 0;
    for (int p = 0; p < pairs; p++) {
      double margin = r[p] - r[pairs + p];
      loss += -DpoObjective.logSigmoid(margin);
      double d = -DpoObjective.sigmoid(-margin) / pairs; // d(−log σ(x))/dx = −σ(−x)
      dReward[p] = d;
      dReward[pairs + p] = -d;
      m[0] += r[p];
      m[1] += r[pairs + p];
      m[2] += margin > 0 ? 1 : 0;
      m[3] += margin;
    }
    m[METRICS.size()] += pairs;
    return loss / pairs;
  }

  @Override
  public void backward(
      LlamaWeights w, LoraAdapter ad, LlamaState s, double scale, IntConsumer gradsFinal) {
    INDArray h = s.normedHidden();
    INDArray dNormed = Nd4j.zeros(h.dataType(), h.shape());
    float[] vw = head.weight().reshape(-1).toFloatVector();
    float[] dw = new float[vw.length];
    // dLoss/db = Σ over pairs of (d − d) = 0 exactly: the bias cancels in r_chosen − r_rejected.
    // Summed row by row it would be rounding noise, which Adam scales to ±lr steps that differ
    // between world sizes; so it is exactly zero (the head's bias keeps its initial value)
    double db = 0;
    int pairs = lastToken.length / 2;
    for (int p = 0; p < pairs; p++) {
      db += dReward[p] * scale + dReward[pairs + p] * scale;
    }
    for (int row = 0; row < lastToken.length; row++) {
      double g = dReward[row] * scale;
      float[] x = h.getRow(lastToken[row]).toFloatVector();
      float[] dx = new float[vw.length];
      for (int i = 0; i < vw.length; i++) {
        dw[i] += (float) (g * x[i]);
        dx[i] = (float) (g * vw[i]);
      }
      dNormed.putRow(lastToken[row], Nd4j.create(dx, new long[] {1, vw.length}, h.dataType()));
    }
    // the head's gradients first: backward reports depth numLayers (the head's) final at once
    dWeight.addi(Nd4j.create(dw, dWeight.shape(), dWeight.dataType()));
    dBias.addi(db);
    Llama.backwardFromHiddenGrads(w, ad, s, dNormed, gradsFinal);
  }

  @Override
  public boolean hasTargets(Batch b) {
    return b.batch() > 0;
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
}
