package dev.danlu.train.recipe;

import dev.danlu.train.lora.CounterRng;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.Generator;
import dev.danlu.train.model.Llama;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.tensor.Buf;
import java.util.List;

/**
 * PPO's rollouts for one micro-batch of prompts (TRL's {@code generate} + {@code
 * batched_forward_pass} + reward scoring): each prompt's response sampled token by token with the
 * KV-cache {@link Generator} on the merged policy, every draw keyed by (seed, iteration, prompt
 * global id, token index), so a prompt gets the same response on any rank and after a resume; then
 * the query + response rows scored in one batched forward each: the policy's log-probabilities,
 * values and entropies, the reference's log-probabilities (adapter off), and the reward model's
 * score on the last response token.
 */
public final class PpoRollouts {
  private PpoRollouts() {}

  /** Salt of the sampling keys ("ppoRoll"). */
  static final long SALT = 0x70706f526f6c6cL;

  /**
   * One micro-batch scored. Arrays {@code [row][t]} over the batch's positions; position t carries
   * the data of the token at t + 1 ({@code mask} = 1 where that is a response token).
   *
   * @param batch query + response rows, right-padded, labels = the response tokens (-100 elsewhere)
   * @param scores the reward model's score per row
   * @param entropy per row: the sum over its response positions of the policy's entropy (nats)
   */
  public record Scored(
      Batch batch,
      double[][] logprobs,
      double[][] refLogprobs,
      double[][] values,
      int[][] mask,
      double[] scores,
      double[] entropy) {}

  /**
   * Samples a response to {@code prompt}: softmax of the logits at temperature 1, no top-k/top-p
   * (TRL's PPO generation settings), inverse-CDF draws with {@code CounterRng.uniform(key,
   * tokenIndex)}. Stops after {@code eos} (which is kept: the reward model scores it, as it was
   * trained on response + {@code </s>}) or after {@code maxNew} tokens.
   */
  public static int[] sample(Generator gen, int[] prompt, int maxNew, int eos, long key) {
    float[] logits = gen.feed(prompt, 0, prompt.length, 0);
    int[] out = new int[maxNew];
    int n = 0;
    while (n < maxNew) {
      int token = draw(logits, CounterRng.uniform(key, n));
      out[n++] = token;
      if (token == eos || n == maxNew) {
        break;
      }
      logits = gen.step(token, prompt.length + n - 1);
    }
    return java.util.Arrays.copyOf(out, n);
  }

  /** The sampling key of a prompt's response in an iteration. */
  public static long key(long seed, long iteration, long promptId) {
    return CounterRng.key(seed, SALT, iteration, promptId);
  }

  /** The token whose cumulative softmax probability first exceeds {@code u} (in double). */
  static int draw(float[] logits, double u) {
    double max = Double.NEGATIVE_INFINITY;
    for (float l : logits) {
      max = Math.max(max, l);
    }
    double sum = 0;
    for (float l : logits) {
      sum += Math.exp(l - max);
    }
    double target = u * sum;
    double acc = 0;
    for (int i = 0; i < logits.length; i++) {
      acc += Math.exp(logits[i] - max);
      if (acc > target) {
        return i;
      }
    }
    return logits.length - 1; // u·sum rounded past the last cumulative sum
  }

  /**
   * Query + response rows, right-padded with {@code pad} to the longest; labels -100 over the query
   * and the padding; sample ids = the prompts' global ids; no dropout (rollout time).
   */
  public static Batch batch(List<int[]> prompts, List<int[]> responses, long[] ids, int pad) {
    int rows = prompts.size();
    int seq = 0;
    for (int i = 0; i < rows; i++) {
      seq = Math.max(seq, prompts.get(i).length + responses.get(i).length);
    }
    int[] input = new int[rows * seq];
    int[] mask = new int[rows * seq];
    int[] labels = new int[rows * seq];
    java.util.Arrays.fill(input, pad);
    java.util.Arrays.fill(labels, -100);
    for (int i = 0; i < rows; i++) {
      int[] q = prompts.get(i);
      int[] r = responses.get(i);
      for (int t = 0; t < q.length + r.length; t++) {
        int n = i * seq + t;
        input[n] = t < q.length ? q[t] : r[t - q.length];
        mask[n] = 1;
        if (t >= q.length) {
          labels[n] = input[n];
        }
      }
    }
    return new Batch(rows, seq, input, mask, labels, ids.clone(), 0, false);
  }

  /**
   * Scores a rollout batch: the policy ({@code policy}, value head {@code head}) and the reference
   * (adapter off) in {@code s}, the reward model ({@code rm} with {@code rmHead}) in {@code
   * rmState}.
   */
  public static Scored score(
      LlamaWeights w,
      LoraAdapter policy,
      ValueHead head,
      LlamaState s,
      LoraAdapter rm,
      RewardObjective rmHead,
      LlamaState rmState,
      Batch b) {
    Scored p = policyPass(w, policy, head, s, b);
    double[] scores = rmHead.rewards(w, rm, rmState, b);
    return new Scored(b, p.logprobs(), p.refLogprobs(), p.values(), p.mask(), scores, p.entropy());
  }

  /**
   * The policy's and the reference's part of {@link #score} (TRL's {@code batched_forward_pass} of
   * both models): log-probabilities, values and entropies of the response positions ({@code scores}
   * null). Outside the mask every array is 0.
   */
  public static Scored policyPass(
      LlamaWeights w, LoraAdapter policy, ValueHead head, LlamaState s, Batch b) {
    int rows = b.batch();
    int seq = b.seq();
    double[] flat = new double[rows * seq];
    Llama.forwardLogits(w, null, s, b); // the reference: adapter off
    Llama.tokenLogProbs(s, b.labels(), flat);
    double[][] ref = perRow(flat, rows, seq);
    Llama.forwardLogits(w, policy, s, b);
    Llama.tokenLogProbs(s, b.labels(), flat);
    double[][] lp = perRow(flat, rows, seq);
    int[][] mask = new int[rows][seq];
    double[][] values = new double[rows][seq];
    double[] entropy = new double[rows];
    float[] vw = head.weight().reshape(-1).toFloatVector();
    double vb = head.bias().getDouble(0);
    Buf h = Buf.of(s.normedHidden());
    Buf logits = Buf.of(s.logits);
    int dim = vw.length;
    int vocab = (int) s.logits.size(1);
    for (int i = 0; i < rows; i++) {
      for (int t = 0; t < seq; t++) {
        int n = i * seq + t;
        if (Double.isNaN(lp[i][t])) {
          lp[i][t] = 0;
          ref[i][t] = 0;
          continue;
        }
        mask[i][t] = 1;
        // the value as PpoObjective computes it: float head weights times the hidden state, in
        // double, so the first PPO epoch starts from exactly these old values
        double v = vb;
        for (int k = 0; k < dim; k++) {
          v += (double) vw[k] * h.get(n * dim + k);
        }
        values[i][t] = v;
        entropy[i] += entropy(logits, n * vocab, vocab);
      }
    }
    return new Scored(b, lp, ref, values, mask, null, entropy);
  }

  /** The entropy of softmax(logits[off, off + vocab)) in nats. */
  private static double entropy(Buf logits, int off, int vocab) {
    double max = Double.NEGATIVE_INFINITY;
    for (int k = 0; k < vocab; k++) {
      max = Math.max(max, logits.get(off + k));
    }
    double z = 0;
    double ez = 0;
    for (int k = 0; k < vocab; k++) {
      double x = logits.get(off + k) - max;
      double e = Math.exp(x);
      z += e;
      ez += e * x;
    }
    return Math.log(z) - ez / z;
  }

  private static double[][] perRow(double[] flat, int rows, int seq) {
    double[][] out = new double[rows][seq];
    for (int i = 0; i < rows; i++) {
      System.arraycopy(flat, i * seq, out[i], 0, seq);
    }
    return out;
  }
}
