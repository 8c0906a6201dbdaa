package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.checkpoint.SafeTensors;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.lora.LoraModule;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import java.io.IOException;
import java.nio.file.Path;
import java.util.EnumSet;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The preference objectives against the plain-PyTorch reference in {@code
 * src/test/resources/alignment-reference/} ({@code src/test/python/alignment_reference.py}, no
 * TRL): 2 pairs on the tiny LLaMA with a non-zero LoRA adapter, losses, per-row log-probabilities
 * of policy and adapter-off reference, and every gradient. Error measure: max |java − torch| / max
 * |torch| per tensor ≤ 1e-5 (float32 math over a few hundred terms against float64).
 */
class AlignmentReferenceTest {
  static final Path REF = Path.of("src/test/resources/reference");
  static final Path DIR = Path.of("src/test/resources/alignment-reference");
  static final double TOL = 1e-5;

  record Setup(LlamaWeights w, LoraAdapter ad, LlamaState s, Batch b) {}

  static Setup setup() throws IOException {
    LlamaWeights w = HfLlama.load(REF.resolve("tiny-llama"), DataType.FLOAT);
    LlamaConfig c = w.config();
    LoraConfig lc = new LoraConfig(4, 6, 0.0, EnumSet.allOf(LoraModule.class), true, true, 0);
    LoraAdapter ad;
    try (SafeTensors st = SafeTensors.open(DIR.resolve("policy-adapter.safetensors"))) {
      ad = LoraAdapter.fromTensors(lc, c, source(st), DataType.FLOAT);
    }
    int[] ids;
    int[] mask;
    int[] labels;
    try (SafeTensors io = SafeTensors.open(DIR.resolve("io.safetensors"))) {
      ids = ints(io.readLongs("input_ids"));
      mask = ints(io.readLongs("attention_mask"));
      labels = ints(io.readLongs("labels"));
    }
    LlamaState s = new LlamaState(c, 4, 8, lc, false, DataType.FLOAT);
    return new Setup(w, ad, s, new Batch(4, 8, ids, mask, labels, null, 0, true));
  }

  @Test
  void dpoLossLogProbsAndGradientsMatchPyTorch() throws IOException {
    Setup u = setup();
    DpoObjective dpo = new DpoObjective(0.1, 0.1);
    double loss = dpo.forward(u.w(), u.ad(), u.s(), u.b());
    try (SafeTensors io = SafeTensors.open(DIR.resolve("io.safetensors"));
        SafeTensors grads = SafeTensors.open(DIR.resolve("dpo-grads.safetensors"))) {
      float ref = io.readFloats("dpo_loss")[0];
      assertEquals(ref, loss, TOL * Math.abs(ref), "dpo loss");
      assertClose("policy log-probs", io.readFloats("policy_logps"), dpo.lastLogProbs().policy());
      assertClose(
          "reference log-probs", io.readFloats("reference_logps"), dpo.lastLogProbs().reference());
      dpo.backward(u.w(), u.ad(), u.s(), 1.0, null);
      int n = 0;
      for (LoraAdapter.NamedParam p : u.ad().trainable()) {
        assertClose(p.name(), grads.readFloats(p.name()), p.grad());
        n++;
      }
      assertEquals(grads.names().size(), n, "every reference gradient checked");
    }
    // TRL's metrics of that forward: 2 pairs scored, accuracies a fraction
    double[] m = dpo.drainMetrics(true);
    assertEquals(2, m[DpoObjective.METRICS.size()]);
    assertTrue(m[2] >= 0 && m[2] <= 2);
  }

  @Test
  void rewardModelLossRewardsAndGradientsMatchPyTorch() throws IOException {
    Setup u = setup();
    ValueHead head = ValueHead.load(DIR, 32);
    RewardObjective rm = new RewardObjective(head, head.attachTo(u.ad()));
    double loss = rm.forward(u.w(), u.ad(), u.s(), u.b());
    try (SafeTensors io = SafeTensors.open(DIR.resolve("io.safetensors"));
        SafeTensors grads = SafeTensors.open(DIR.resolve("rm-grads.safetensors"))) {
      float ref = io.readFloats("rm_loss")[0];
      assertEquals(ref, loss, TOL * Math.abs(ref), "rm loss");
      assertClose("rewards", io.readFloats("rm_rewards"), rm.rewards(u.w(), u.ad(), u.s(), u.b()));
      rm.forward(u.w(), u.ad(), u.s(), u.b()); // rewards() replaced what backward needs
      rm.backward(u.w(), u.ad(), u.s(), 1.0, null);
      int n = 0;
      for (LoraAdapter.NamedParam p : u.ad().trainable()) {
        if (p.name().equals(ValueHead.BIAS)) {
          // the bias cancels in r_chosen − r_rejected: its gradient is 0, up to rounding in both
          assertTrue(Math.abs(grads.readFloats(p.name())[0]) < 1e-12, "reference bias gradient");
          assertTrue(Math.abs(p.grad().getDouble(0)) < 1e-12, "bias gradient " + p.grad());
          n++;
        } else if (grads.contains(p.name())) {
          assertClose(p.name(), grads.readFloats(p.name()), p.grad());
          n++;
        } else {
          // the LM head takes no part in a reward
          assertEquals(0.0, p.grad().norm1Number().doubleValue(), 0.0, p.name());
        }
      }
      assertEquals(grads.names().size(), n, "every reference gradient checked");
    }
  }

  @Test
  void ppoMiniBatchThroughTheModelMatchesPyTorch() throws IOException {
    Setup u = setup();
    int seq = 8;
    int[] ids = java.util.Arrays.copyOf(u.b().inputIds(), 2 * seq);
    int[] mask = java.util.Arrays.copyOf(u.b().attentionMask(), 2 * seq);
    int[] labels = java.util.Arrays.copyOf(u.b().labels(), 2 * seq);
    Batch b = new Batch(2, seq, ids, mask, labels, null, 0, true);
    LlamaState s = new LlamaState(u.w().config(), 2, seq, u.ad().config, false, DataType.FLOAT);
    ValueHead head = ValueHead.load(DIR, 32);
    try (SafeTensors io = SafeTensors.open(DIR.resolve("ppo-model.safetensors"));
        SafeTensors grads = SafeTensors.open(DIR.resolve("ppo-model-grads.safetensors"))) {
      double[][] oldLp = PpoMathReferenceTest.matrix(io, "old_logprobs");
      double[][] oldV = PpoMathReferenceTest.matrix(io, "old_values");
      double[][] adv = PpoMathReferenceTest.matrix(io, "advantages");
      double[][] ret = PpoMathReferenceTest.matrix(io, "returns");
      PpoObjective ppo =
          new PpoObjective(
              head,
              head.attachTo(u.ad()),
              id ->
                  new PpoObjective.Rollout(
                      oldLp[(int) id], oldV[(int) id], adv[(int) id], ret[(int) id]),
              0.2,
              0.2,
              0.1);
      double loss = ppo.forward(u.w(), u.ad(), s, b);
      double ref = io.readDoubles("loss")[0];
      assertEquals(ref, loss, TOL * Math.abs(ref), "ppo loss");
      assertEquals(io.readDoubles("pg_loss")[0], ppo.lastLoss().policyLoss(), TOL, "pg loss");
      assertEquals(io.readDoubles("vf_loss")[0], ppo.lastLoss().valueLoss(), TOL, "vf loss");
      ppo.backward(u.w(), u.ad(), s, 1.0, null);
      int n = 0;
      for (LoraAdapter.NamedParam p : u.ad().trainable()) {
        assertClose("ppo " + p.name(), grads.readFloats(p.name()), p.grad());
        n++;
      }
      assertEquals(grads.names().size(), n, "every reference gradient checked");
    }
  }

  /**
   * One PPO iteration on fixed rollouts (rows 0-1 as query + response, fixed reward-model scores):
   * what {@link PpoIterations} does between generation and training — rollout-time log-probs of
   * policy and reference and values ({@link PpoRollouts#policyPass}), rewards, GAE, whitening
   * ({@link PpoMath}) — then the first update's loss and every gradient ({@link PpoObjective}).
   */
  @Test
  void ppoIterationOnFixedRolloutsMatchesPyTorch() throws IOException {
    Setup u = setup();
    int seq = 8;
    int[] ids = java.util.Arrays.copyOf(u.b().inputIds(), 2 * seq);
    int[] mask = java.util.Arrays.copyOf(u.b().attentionMask(), 2 * seq);
    int[] labels = java.util.Arrays.copyOf(u.b().labels(), 2 * seq);
    Batch rollout = new Batch(2, seq, ids, mask, labels, null, 0, false);
    LlamaState s = new LlamaState(u.w().config(), 2, seq, u.ad().config, false, DataType.FLOAT);
    ValueHead head = ValueHead.load(DIR, 32);
    INDArray[] headGrads = head.attachTo(u.ad());
    try (SafeTensors io = SafeTensors.open(DIR.resolve("ppo-iteration.safetensors"));
        SafeTensors grads = SafeTensors.open(DIR.resolve("ppo-iteration-grads.safetensors"))) {
      PpoRollouts.Scored sc = PpoRollouts.policyPass(u.w(), u.ad(), head, s, rollout);
      int[][] m = sc.mask();
      assertMasked(
          "old_logprobs", PpoMathReferenceTest.matrix(io, "old_logprobs"), sc.logprobs(), m);
      assertMasked(
          "ref_logprobs", PpoMathReferenceTest.matrix(io, "ref_logprobs"), sc.refLogprobs(), m);
      assertMasked("old_values", PpoMathReferenceTest.matrix(io, "old_values"), sc.values(), m);
      double[][] rewards =
          PpoMath.rewards(io.readDoubles("scores"), sc.logprobs(), sc.refLogprobs(), m, 0.2);
      assertMasked("rewards", PpoMathReferenceTest.matrix(io, "rewards"), rewards, m);
      PpoMath.Gae gae = PpoMath.gae(sc.values(), rewards, m, 1.0, 0.95);
      assertMasked(
          "advantages", PpoMathReferenceTest.matrix(io, "advantages"), gae.advantages(), m);
      assertMasked("returns", PpoMathReferenceTest.matrix(io, "returns"), gae.returns(), m);
      PpoObjective ppo =
          new PpoObjective(
              head,
              headGrads,
              id ->
                  new PpoObjective.Rollout(
                      sc.logprobs()[(int) id],
                      sc.values()[(int) id],
                      gae.advantages()[(int) id],
                      gae.returns()[(int) id]),
              0.2,
              0.2,
              0.1);
      Batch train = new Batch(2, seq, ids, mask, labels, null, 0, true);
      double loss = ppo.forward(u.w(), u.ad(), s, train);
      double ref = io.readDoubles("loss")[0];
      assertEquals(ref, loss, TOL * Math.abs(ref), "ppo iteration loss");
      assertEquals(io.readDoubles("pg_loss")[0], ppo.lastLoss().policyLoss(), TOL, "pg loss");
      assertEquals(io.readDoubles("vf_loss")[0], ppo.lastLoss().valueLoss(), TOL, "vf loss");
      assertEquals(0.0, ppo.lastLoss().clipFraction(), 0.0, "new = old: nothing clipped");
      ppo.backward(u.w(), u.ad(), s, 1.0, null);
      int n = 0;
      for (LoraAdapter.NamedParam p : u.ad().trainable()) {
        assertClose("ppo iteration " + p.name(), grads.readFloats(p.name()), p.grad());
        n++;
      }
      assertEquals(grads.names().size(), n, "every reference gradient checked");
    }
  }

  /** Relative error (max |java − torch| / max |torch|) over the masked positions ≤ TOL. */
  static void assertMasked(String what, double[][] expected, double[][] got, int[][] mask) {
    double maxRef = 0;
    double maxErr = 0;
    int count = 0;
    for (int i = 0; i < expected.length; i++) {
      for (int t = 0; t < expected[i].length; t++) {
        if (mask[i][t] != 0) {
          maxRef = Math.max(maxRef, Math.abs(expected[i][t]));
          maxErr = Math.max(maxErr, Math.abs(expected[i][t] - got[i][t]));
          count++;
        }
      }
    }
    assertTrue(count > 0, what + ": no masked position");
    assertTrue(maxErr <= TOL * maxRef, what + ": relative error " + maxErr / maxRef);
  }

  @Test
  void freshAdapterIsTheReferenceSoTheLossIsLog2() throws IOException {
    Setup u = setup();
    LoraAdapter fresh = LoraAdapter.init(u.ad().config, u.w());
    double loss = new DpoObjective(0.1, 0.0).forward(u.w(), fresh, u.s(), u.b());
    // policy == reference to the last bit? No: LoRA adds B·A·x = 0 exactly (B = 0), and the
    // adapter's embed_tokens / lm_head copies equal the base's, so both forwards run the same
    // operations on the same numbers: z = 0 exactly and the loss is exactly log 2
    assertEquals(Math.log(2), loss, 0.0);
  }

  static void assertClose(String what, float[] expected, double[] actual) {
    float[] got = new float[actual.length];
    for (int i = 0; i < got.length; i++) {
      got[i] = (float) actual[i];
    }
    assertClose(what, expected, got);
  }

  static void assertClose(String what, float[] expected, INDArray actual) {
    assertClose(what, expected, actual.reshape(-1).toFloatVector());
  }

  static void assertClose(String what, float[] expected, float[] got) {
    assertEquals(expected.length, got.length, what + " size");
    double maxRef = 0;
    double maxErr = 0;
    for (int i = 0; i < got.length; i++) {
      maxRef = Math.max(maxRef, Math.abs(expected[i]));
      maxErr = Math.max(maxErr, Math.abs(expected[i] - got[i]));
    }
    assertTrue(maxRef > 0, what + " reference is all zeros");
    System.err.printf("%s: max |err| / max |ref| = %.2e%n", what, maxErr / maxRef);
    assertTrue(maxErr <= TOL * maxRef, what + ": max error " + maxErr + " vs max |ref| " + maxRef);
  }

  static LlamaWeights.TensorSource source(SafeTensors st) {
    return new LlamaWeights.TensorSource() {
      @Override
      public boolean contains(String name) {
        return st.contains(name);
      }

      @Override
      public long[] shape(String name) {
        return st.info(name).shape();
      }

      @Override
      public float[] readFloats(String name) {
        return st.readFloats(name);
      }
    };
  }

  static int[] ints(long[] v) {
    int[] out = new int[v.length];
    for (int i = 0; i < v.length; i++) {
      out[i] = Math.toIntExact(v[i]);
    }
    return out;
  }
}
