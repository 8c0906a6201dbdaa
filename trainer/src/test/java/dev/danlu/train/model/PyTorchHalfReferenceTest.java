package dev.danlu.train.model;

import static dev.danlu.train.model.PyTorchReferenceTest.REF;
import static dev.danlu.train.model.PyTorchReferenceTest.TOL;
import static dev.danlu.train.model.PyTorchReferenceTest.assertClose;
import static dev.danlu.train.model.PyTorchReferenceTest.ints;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.checkpoint.SafeTensors;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraModule;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * torch_dtype float16 / bfloat16 against PyTorch: {@code reference/half.safetensors} holds logits,
 * loss and every trainable gradient of the tiny model whose frozen weights are {@code
 * .half().float()} / {@code .bfloat16().float()} (float64 math from those values), plus the base
 * model's logits with its frozen embed_tokens / lm_head in that dtype. danlu loads either the
 * float32 checkpoint (rounding on load) or the checkpoint torch saved in that dtype (bits copied),
 * stores the frozen weights in 16 bits and computes in float32.
 */
class PyTorchHalfReferenceTest {

  static DataType type(String tag) {
    return tag.equals("f16") ? DataType.HALF : DataType.BFLOAT16;
  }

  @ParameterizedTest
  @CsvSource({
    "f16, tiny-llama",
    "f16, tiny-llama-f16",
    "bf16, tiny-llama",
    "bf16, tiny-llama-bf16"
  })
  void adaptedLogitsLossAndGradientsMatchPyTorch(String tag, String dir) throws IOException {
    LlamaWeights w = HfLlama.load(REF.resolve(dir), type(tag));
    assertEquals(type(tag), w.storageType());
    LoraAdapter ad = PyTorchReferenceTest.adapter(w.config());
    try (SafeTensors io = SafeTensors.open(REF.resolve("io.safetensors"));
        SafeTensors half = SafeTensors.open(REF.resolve("half.safetensors"))) {
      LlamaState s =
          new LlamaState(
              w.config().withVocabSize(ad.vocabSize()), 2, 7, ad.config, false, DataType.FLOAT);
      double loss =
          Llama.forward(
              w,
              ad,
              s,
              new Batch(
                  2,
                  7,
                  ints(io.readLongs("input_ids")),
                  ints(io.readLongs("attention_mask")),
                  ints(io.readLongs("labels")),
                  null,
                  0,
                  true));
      assertClose(tag + ".logits", half.readFloats(tag + ".logits"), s.logits);
      float refLoss = half.readFloats(tag + ".loss")[0];
      assertEquals(refLoss, loss, TOL * Math.abs(refLoss), "loss");
      // the test can tell: rounding moves the logits by far more than the tolerance
      float[] f32 = io.readFloats("logits");
      float[] rounded = half.readFloats(tag + ".logits");
      double moved = 0;
      double max = 0;
      for (int i = 0; i < f32.length; i++) {
        moved = Math.max(moved, Math.abs(f32[i] - rounded[i]));
        max = Math.max(max, Math.abs(f32[i]));
      }
      System.err.printf("%s rounding moves logits by %.2e of max |logit|%n", tag, moved / max);
      assertTrue(moved > 10 * TOL * max, "rounding effect " + moved / max);
      Llama.backward(w, ad, s, 1.0);
      int n = 0;
      for (LoraAdapter.NamedParam p : ad.trainable()) {
        assertClose(p.name(), half.readFloats(tag + ".grad." + p.name()), p.grad());
        n++;
      }
      assertEquals(30, n, "28 LoRA tensors + embed_tokens + lm_head");
    }
  }

  @ParameterizedTest
  @CsvSource({
    "f16, tiny-llama",
    "f16, tiny-llama-f16",
    "bf16, tiny-llama",
    "bf16, tiny-llama-bf16"
  })
  void baseModelWithHalfEmbeddingAndHeadMatchesPyTorch(String tag, String dir) throws IOException {
    LlamaWeights w = HfLlama.load(REF.resolve(dir), type(tag));
    assertEquals(type(tag), w.embedTokens().dataType());
    assertEquals(type(tag), w.lmHead().dataType());
    try (SafeTensors io = SafeTensors.open(REF.resolve("io.safetensors"));
        SafeTensors half = SafeTensors.open(REF.resolve("half.safetensors"))) {
      LlamaState s = new LlamaState(w.config(), 2, 7, null, false, DataType.FLOAT);
      Llama.forward(
          w,
          null,
          s,
          Batch.of(
              2, 7, ints(io.readLongs("base_input_ids")), ints(io.readLongs("attention_mask"))));
      assertClose(tag + ".base_logits", half.readFloats(tag + ".base_logits"), s.logits);
    }
  }

  @ParameterizedTest
  @CsvSource({"f16, F16", "bf16, BF16"})
  void roundingOnLoadGivesTheBitsTorchSaved(String tag, String fileDtype) throws IOException {
    LlamaWeights fromF32 = HfLlama.load(REF.resolve("tiny-llama"), type(tag));
    LlamaWeights fromHalf = HfLlama.load(REF.resolve("tiny-llama-" + tag), type(tag));
    try (SafeTensors st =
        SafeTensors.open(REF.resolve("tiny-llama-" + tag + "/model.safetensors"))) {
      for (int l = 0; l < 2; l++) {
        for (LoraModule m : LoraModule.values()) {
          String name = "model.layers." + l + "." + m.path() + ".weight";
          assertEquals(fileDtype, st.info(name).dtype().name());
          short[] file = shorts(st.readBytes(name));
          assertArrayEquals(file, shorts(fromF32.layers()[l].linear(m)), name + " rounded on load");
          assertArrayEquals(file, shorts(fromHalf.layers()[l].linear(m)), name + " copied");
        }
      }
      short[] embed = shorts(st.readBytes("model.embed_tokens.weight"));
      assertArrayEquals(embed, shorts(fromF32.embedTokens()));
      // norms stay float32 but hold the rounded values
      assertArrayEquals(
          st.readFloats("model.norm.weight"), fromF32.norm().toFloatVector(), "final norm");
    }
  }

  private static short[] shorts(ByteBuffer le) {
    ByteBuffer b = le.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    short[] out = new short[b.remaining() / 2];
    b.asShortBuffer().get(out);
    return out;
  }

  private static short[] shorts(INDArray a) {
    return shorts(a.data().asNio().order(ByteOrder.nativeOrder()));
  }
}
