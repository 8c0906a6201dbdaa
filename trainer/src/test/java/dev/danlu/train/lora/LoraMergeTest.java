package dev.danlu.train.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.checkpoint.SafeTensors;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.Llama;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Merged weights give the logits of base + adapter, and the merged projections equal PyTorch's
 * merged model (reference fixtures).
 */
class LoraMergeTest {
  static final Path REF = Path.of("src/test/resources/reference");

  @Test
  void mergedModelMatchesAdapterLogitsAndReferenceMerge() throws Exception {
    LlamaWeights base = HfLlama.load(REF.resolve("tiny-llama"), DataType.FLOAT);
    LoraAdapter ad = PeftBridge.load(REF.resolve("tiny-adapter"), base.config(), DataType.FLOAT);
    LlamaWeights merged = LoraMerge.merge(base, ad);
    assertEquals(147, merged.config().vocabSize());
    int[] ids;
    int[] mask;
    float[] ref;
    try (SafeTensors io = SafeTensors.open(REF.resolve("io.safetensors"))) {
      ids = java.util.Arrays.stream(io.readLongs("input_ids")).mapToInt(Math::toIntExact).toArray();
      mask =
          java.util.Arrays.stream(io.readLongs("attention_mask"))
              .mapToInt(Math::toIntExact)
              .toArray();
      ref = io.readFloats("logits");
    }
    LlamaState s = new LlamaState(merged.config(), 2, 7, null, false, DataType.FLOAT);
    Llama.forward(merged, null, s, Batch.of(2, 7, ids, mask));
    float[] got = s.logits.reshape(-1).toFloatVector();
    double maxErr = 0;
    double maxRef = 0;
    for (int i = 0; i < got.length; i++) {
      maxErr = Math.max(maxErr, Math.abs(got[i] - ref[i]));
      maxRef = Math.max(maxRef, Math.abs(ref[i]));
    }
    assertTrue(maxErr <= 1e-5 * maxRef, "merged logits max error " + maxErr);
    LlamaWeights torchMerged = HfLlama.load(REF.resolve("tiny-merged"), DataType.FLOAT);
    for (int l = 0; l < 2; l++) {
      for (LoraModule m : LoraModule.values()) {
        float[] a = merged.layers()[l].linear(m).reshape(-1).toFloatVector();
        float[] b = torchMerged.layers()[l].linear(m).reshape(-1).toFloatVector();
        for (int i = 0; i < a.length; i++) {
          assertEquals(b[i], a[i], 1e-6f * Math.max(1, Math.abs(b[i])), l + " " + m + " " + i);
        }
      }
    }
  }

  @Test
  void peftRoundTripKeepsEveryTensor(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
    LlamaWeights base = HfLlama.load(REF.resolve("tiny-llama"), DataType.FLOAT);
    LoraAdapter ad = PeftBridge.load(REF.resolve("tiny-adapter"), base.config(), DataType.FLOAT);
    PeftBridge.toPeft(ad, "tiny-llama").save(tmp);
    LoraAdapter back = PeftBridge.load(tmp, base.config(), DataType.FLOAT);
    assertEquals(ad.config, back.config);
    for (int i = 0; i < ad.trainable().size(); i++) {
      assertEquals(ad.trainable().get(i).name(), back.trainable().get(i).name());
      assertEquals(ad.trainable().get(i).value(), back.trainable().get(i).value());
    }
  }
}
