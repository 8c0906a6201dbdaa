package dev.danlu.train.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.checkpoint.SafeTensors;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.Llama;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * AdaLoRA against the plain-PyTorch re-implementation of PEFT's tuners/adalora in {@code
 * src/test/python/adalora_reference.py} (fixture {@code adalora/adalora.safetensors}), on the
 * committed tiny LLaMA with all seven projections of both layers adapted: the loss with the
 * orthogonality regulariser and every gradient of A, B and E (≤ 1e-5 of the largest reference
 * value: float32 against float64), then six SGD steps with the rank allocator after each, whose
 * masks must be identical (the script checks that no triplet score lies within 1e-4 relative of a
 * threshold, so float32 rounding cannot flip one) and whose E and final A, B match within 1e-5.
 */
class AdaLoraReferenceTest {
  static final Path REF = Path.of("src/test/resources/reference");
  static final double TOL = 1e-5;
  static final Path FIXTURE = Path.of("src/test/resources/adalora/adalora.safetensors");
  static final AdaLoraConfig CFG = new AdaLoraConfig(4, 2, 1, 2, 1, 0.85, 0.85, 0.5, 7);
  static final double LR = 0.05;

  @Test
  void lossGradientsAndAllocatorMasksMatchPyTorch() throws IOException {
    LlamaWeights w = HfLlama.load(REF.resolve("tiny-llama"), DataType.FLOAT);
    LlamaConfig c = w.config();
    try (SafeTensors st = SafeTensors.open(FIXTURE)) {
      int[] ids = ints(st.readLongs("ids"));
      int[] mask = ints(st.readLongs("attention_mask"));
      int[] labels = ints(st.readLongs("labels"));
      long[] shape = st.info("ids").shape();
      int b = (int) shape[0];
      int s = (int) shape[1];
      LoraAdapter ad = adapter(st, c);
      LlamaState state = new LlamaState(c, b, s, ad.config, false, DataType.FLOAT);
      Batch in = new Batch(b, s, ids, mask, labels, null, 0, true);

      // 1. loss (cross-entropy + weighted regulariser) and the gradient of every A, B, E
      double loss = lossAndGrad(w, ad, state, in);
      float ref = st.readFloats("loss")[0];
      System.err.printf("loss %.7f vs torch %.7f%n", loss, ref);
      assertEquals(ref, loss, TOL * Math.abs(ref), "loss with orth reg");
      assertEquals(st.readFloats("orth_reg")[0], OrthReg.value(ad), 1e-6, "orth reg");
      int n = 0;
      for (LoraAdapter.NamedParam p : ad.trainable()) {
        assertClose("d " + p.name(), st.readFloats("grad." + p.name()), p.grad());
        n++;
      }
      assertEquals(3 * 14, n, "A, B, E of 7 projections x 2 layers");

      // 2. six SGD steps, the allocator after each
      RankAllocator alloc = new RankAllocator(ad);
      for (int step = 0; step < 6; step++) {
        double stepLoss = lossAndGrad(w, ad, state, in);
        assertEquals(
            st.readFloats("step" + step + ".loss")[0], stepLoss, TOL * Math.abs(stepLoss), "loss");
        Map<String, float[]> grads = new HashMap<>();
        for (LoraAdapter.NamedParam p : ad.trainable()) {
          grads.put(p.name(), p.grad().reshape(-1).toFloatVector());
          p.value().subi(p.grad().mul(LR));
        }
        alloc.updateAndAllocate(step, grads::get);
        String key = "step" + step + ".pattern";
        if (st.names().contains(key)) {
          float[] bits = st.readFloats(key);
          boolean[] expected = new boolean[bits.length];
          for (int i = 0; i < bits.length; i++) {
            expected[i] = bits[i] != 0;
          }
          assertArrayEquals(expected, flatten(ad.rankPattern), "rank pattern after step " + step);
          int kept = 0;
          for (boolean k : expected) {
            kept += k ? 1 : 0;
          }
          System.err.printf(
              "step %d: budget %d, kept %d of %d%n",
              step, alloc.budgetSchedule(step)[0], kept, bits.length);
        } else {
          assertEquals(null, ad.rankPattern, "no mask yet at step " + step);
        }
        for (int l = 0; l < c.numLayers(); l++) {
          for (LoraModule m : LoraModule.values()) {
            String name = "step" + step + ".E.model.layers." + l + "." + m.path();
            assertClose(name, st.readFloats(name), ad.loraE[l][m.ordinal()]);
          }
        }
      }
      assertEquals(alloc.targetBudget(), count(ad.rankPattern), "final budget target_r x 14");
      for (int l = 0; l < c.numLayers(); l++) {
        for (LoraModule m : LoraModule.values()) {
          assertClose(
              "final A",
              st.readFloats("final." + LoraAdapter.adaLoraKey(l, m, "lora_A")),
              ad.loraA[l][m.ordinal()]);
          assertClose(
              "final B",
              st.readFloats("final." + LoraAdapter.adaLoraKey(l, m, "lora_B")),
              ad.loraB[l][m.ordinal()]);
        }
      }
    }
  }

  /**
   * The committed fixture is what the script writes now: the same tensor names, the masks and the
   * inputs identical, every computed value within 1e-6 of the largest in its tensor (sums may round
   * differently on another CPU), so the reference cannot drift from the code that made it.
   */
  @Test
  void committedFixtureIsTheScriptsOutput(@org.junit.jupiter.api.io.TempDir Path tmp)
      throws Exception {
    dev.danlu.testkit.Prereq.python("torch", "numpy");
    Path out = tmp.resolve("adalora.safetensors");
    Process p =
        new ProcessBuilder(
                "/usr/bin/python3", "src/test/python/adalora_reference.py", "--out", out.toString())
            .redirectErrorStream(true)
            .start();
    String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(300, TimeUnit.SECONDS), "adalora_reference.py timed out");
    assertEquals(0, p.exitValue(), log);
    try (SafeTensors committed = SafeTensors.open(FIXTURE);
        SafeTensors made = SafeTensors.open(out)) {
      assertEquals(committed.names(), made.names(), "tensor names");
      for (String n : committed.names()) {
        if (n.equals("ids") || n.equals("attention_mask") || n.equals("labels")) {
          assertArrayEquals(committed.readLongs(n), made.readLongs(n), n);
        } else if (n.endsWith(".pattern")) {
          assertArrayEquals(committed.readFloats(n), made.readFloats(n), n);
        } else {
          float[] c = committed.readFloats(n);
          double max = 0;
          for (float x : c) {
            max = Math.max(max, Math.abs(x));
          }
          float[] m = made.readFloats(n);
          for (int i = 0; i < c.length; i++) {
            assertEquals(c[i], m[i], 1e-6 * max + 1e-30, n + "[" + i + "]");
          }
        }
      }
    }
  }

  /** Forward + backward of loss + w·R with fresh gradients; returns the loss. */
  static double lossAndGrad(LlamaWeights w, LoraAdapter ad, LlamaState s, Batch in) {
    ad.zeroGrad();
    ad.syncSvd();
    double ce = Llama.forward(w, ad, s, in);
    Llama.backward(w, ad, s, 1.0);
    double reg = OrthReg.addGradient(ad, CFG.orthRegWeight());
    return ce + CFG.orthRegWeight() * reg;
  }

  static LoraAdapter adapter(SafeTensors st, LlamaConfig c) {
    int layers = c.numLayers();
    int nm = LoraModule.values().length;
    INDArray[][] a = new INDArray[layers][nm];
    INDArray[][] bm = new INDArray[layers][nm];
    INDArray[][] e = new INDArray[layers][nm];
    for (int l = 0; l < layers; l++) {
      for (LoraModule m : LoraModule.values()) {
        a[l][m.ordinal()] = read(st, LoraAdapter.adaLoraKey(l, m, "lora_A"));
        bm[l][m.ordinal()] = read(st, LoraAdapter.adaLoraKey(l, m, "lora_B"));
        e[l][m.ordinal()] = read(st, LoraAdapter.adaLoraKey(l, m, "lora_E"));
      }
    }
    LoraConfig lc = new LoraConfig(4, 6, 0.0, LoraConfig.allTargets(), false, false, 0);
    return LoraAdapter.ofAdaLora(lc, CFG, c, a, bm, e, null, null);
  }

  static INDArray read(SafeTensors st, String name) {
    return Nd4j.create(st.readFloats(name), st.info(name).shape(), 'c');
  }

  static boolean[] flatten(boolean[][][] p) {
    java.util.List<Boolean> out = new java.util.ArrayList<>();
    for (boolean[][] layer : p) {
      for (LoraModule m : LoraModule.values()) {
        if (layer[m.ordinal()] != null) {
          for (boolean k : layer[m.ordinal()]) {
            out.add(k);
          }
        }
      }
    }
    boolean[] r = new boolean[out.size()];
    for (int i = 0; i < r.length; i++) {
      r[i] = out.get(i);
    }
    return r;
  }

  static int count(boolean[][][] p) {
    int n = 0;
    for (boolean k : flatten(p)) {
      n += k ? 1 : 0;
    }
    return n;
  }

  static void assertClose(String what, float[] expected, INDArray actual) {
    float[] got = actual.reshape(-1).toFloatVector();
    assertEquals(expected.length, got.length, what + " size");
    double maxRef = 0;
    double maxErr = 0;
    for (int i = 0; i < got.length; i++) {
      maxRef = Math.max(maxRef, Math.abs(expected[i]));
      maxErr = Math.max(maxErr, Math.abs(expected[i] - got[i]));
    }
    if (maxRef == 0) {
      assertEquals(0.0, maxErr, what + ": reference is zero");
      return;
    }
    assertTrue(maxErr <= TOL * maxRef, what + ": max error " + maxErr + " vs max |ref| " + maxRef);
  }

  static int[] ints(long[] v) {
    int[] out = new int[v.length];
    for (int i = 0; i < v.length; i++) {
      out[i] = Math.toIntExact(v[i]);
    }
    return out;
  }
}
