package dev.danlu.train.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.train.checkpoint.SafeTensors;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.lora.LoraModule;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Float32 logits, loss and every gradient against the plain-PyTorch re-implementation of HF
 * LlamaForCausalLM + PEFT LoRA in {@code src/test/resources/reference/} (see its README): GQA,
 * right padding, ignored labels, vocabulary resized 131 -> 147, tied and untied heads, linear and
 * dynamic-NTK rope scaling. Error measure: max |java - torch| / max |torch| per tensor.
 */
class PyTorchReferenceTest {
  static final Path REF = Path.of("src/test/resources/reference");
  static final double TOL = 1e-5;

  static int[] ids;
  static int[] baseIds;
  static int[] mask;
  static int[] labels;

  @BeforeAll
  static void readInputs() throws IOException {
    try (SafeTensors io = SafeTensors.open(REF.resolve("io.safetensors"))) {
      ids = ints(io.readLongs("input_ids"));
      baseIds = ints(io.readLongs("base_input_ids"));
      mask = ints(io.readLongs("attention_mask"));
      labels = ints(io.readLongs("labels"));
    }
  }

  static LoraAdapter adapter(LlamaConfig c) throws IOException {
    JsonNode cfg =
        new ObjectMapper().readTree(REF.resolve("tiny-adapter/adapter_config.json").toFile());
    List<LoraModule> targets = new ArrayList<>();
    cfg.get("target_modules").forEach(n -> targets.add(LoraModule.fromProjName(n.asText())));
    LoraConfig lc =
        new LoraConfig(
            cfg.get("r").asInt(),
            cfg.get("lora_alpha").asDouble(),
            cfg.get("lora_dropout").asDouble(),
            java.util.EnumSet.copyOf(targets),
            true,
            true,
            0);
    try (SafeTensors st = SafeTensors.open(REF.resolve("tiny-adapter/adapter_model.safetensors"))) {
      return LoraAdapter.fromTensors(lc, c, source(st), DataType.FLOAT);
    }
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

  record Run(LlamaWeights w, LoraAdapter ad, LlamaState s, double loss) {}

  /** Runs base + adapter with {@code configJson} replacing tiny-llama's config. */
  static Run runAdapted(Path configJson) throws IOException {
    LlamaWeights base = HfLlama.load(REF.resolve("tiny-llama"), DataType.FLOAT);
    LlamaConfig c = configJson == null ? base.config() : LlamaConfig.load(configJson);
    LlamaWeights w =
        new LlamaWeights(c, base.embedTokens(), base.layers(), base.norm(), base.lmHead());
    LoraAdapter ad = adapter(c);
    LlamaState s =
        new LlamaState(c.withVocabSize(ad.vocabSize()), 2, 7, ad.config, false, DataType.FLOAT);
    double loss = Llama.forward(w, ad, s, new Batch(2, 7, ids, mask, labels, null, 0, true));
    return new Run(w, ad, s, loss);
  }

  @Test
  void logitsLossAndEveryGradientMatchPyTorch() throws IOException {
    Run r = runAdapted(null);
    try (SafeTensors io = SafeTensors.open(REF.resolve("io.safetensors"));
        SafeTensors grads = SafeTensors.open(REF.resolve("grads.safetensors"))) {
      assertClose("logits", io.readFloats("logits"), r.s().logits);
      float refLoss = io.readFloats("loss")[0];
      assertEquals(refLoss, r.loss(), TOL * Math.abs(refLoss), "loss");
      Llama.backward(r.w(), r.ad(), r.s(), 1.0);
      int n = 0;
      for (LoraAdapter.NamedParam p : r.ad().trainable()) {
        assertClose(p.name(), grads.readFloats(p.name()), p.grad());
        n++;
      }
      assertEquals(grads.names().size(), n, "every reference gradient checked");
    }
  }

  @Test
  void baseAndTiedLogitsMatchPyTorch() throws IOException {
    try (SafeTensors io = SafeTensors.open(REF.resolve("io.safetensors"))) {
      for (String[] v :
          new String[][] {{"tiny-llama", "base_logits"}, {"tiny-llama-tied", "tied_logits"}}) {
        LlamaWeights w = HfLlama.load(REF.resolve(v[0]), DataType.FLOAT);
        LlamaState s = new LlamaState(w.config(), 2, 7, null, false, DataType.FLOAT);
        Llama.forward(w, null, s, Batch.of(2, 7, baseIds, mask));
        assertClose(v[1], io.readFloats(v[1]), s.logits);
      }
    }
  }

  @Test
  void ropeScalingVariantsMatchPyTorch() throws IOException {
    try (SafeTensors io = SafeTensors.open(REF.resolve("io.safetensors"))) {
      for (String v : new String[] {"linear", "dynamic"}) {
        LlamaState s = runAdapted(REF.resolve("rope-" + v + ".config.json")).s();
        assertClose("rope_" + v, io.readFloats("rope_" + v + "_logits"), s.logits);
      }
    }
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
    assertTrue(maxRef > 0, what + " reference is all zeros");
    System.err.printf("%s: max |err| / max |ref| = %.2e%n", what, maxErr / maxRef);
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
