package dev.danlu.train.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Float64 central finite differences against the analytic backward for every trainable tensor (LoRA
 * A/B on all seven targets, embed_tokens, lm_head), with GQA, right padding, ignored labels and
 * LoRA dropout on. The same model code runs in float64 (ND4J DOUBLE + kernels in double), so this
 * checks the production path, not a copy.
 */
class GradientCheckTest {
  @ParameterizedTest
  @ValueSource(strings = {"none", "linear", "dynamic"})
  void analyticGradientsMatchFiniteDifferences(String scaling) {
    LlamaConfig.RopeScaling rs =
        switch (scaling) {
          case "linear" -> new LlamaConfig.RopeScaling(LlamaConfig.RopeScaling.Type.LINEAR, 2.0);
          case "dynamic" -> new LlamaConfig.RopeScaling(LlamaConfig.RopeScaling.Type.DYNAMIC, 2.0);
          default -> null;
        };
    // max positions 4 < seq 7, so dynamic NTK actually rescales the base
    LlamaConfig c = TinyModels.config(rs, 4);
    LlamaWeights w = LlamaWeights.random(c, 1, DataType.DOUBLE);
    LoraConfig lc = TinyModels.lora(0.25);
    LoraAdapter ad = TinyModels.trainedAdapter(w, lc, 2);
    Batch batch = TinyModels.batch(7, c.vocabSize(), 3, true);
    LlamaState s = TinyModels.state(c, batch, lc, false, DataType.DOUBLE);

    Llama.forward(w, ad, s, batch);
    Llama.backward(w, ad, s, 1.0);

    SplittableRandom pick = new SplittableRandom(4);
    double h = 1e-6;
    int checked = 0;
    for (LoraAdapter.NamedParam p : ad.trainable()) {
      INDArray v = p.value().reshape(-1);
      INDArray g = p.grad().reshape(-1);
      for (int k = 0; k < 3; k++) {
        long i = pick.nextLong(v.length());
        double orig = v.getDouble(i);
        v.putScalar(i, orig + h);
        double up = Llama.forward(w, ad, s, batch);
        v.putScalar(i, orig - h);
        double down = Llama.forward(w, ad, s, batch);
        v.putScalar(i, orig);
        double numeric = (up - down) / (2 * h);
        double analytic = g.getDouble(i);
        double err =
            Math.abs(numeric - analytic) / Math.max(1e-4, Math.abs(numeric) + Math.abs(analytic));
        assertTrue(
            err < 1e-5, p.name() + "[" + i + "]: analytic " + analytic + " vs numeric " + numeric);
        checked++;
      }
    }
    assertEquals(2 * 7 * 2 * 3 + 2 * 3, checked);
  }
}
