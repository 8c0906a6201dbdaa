package dev.danlu.train.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import org.junit.jupiter.api.Test;

/** Against torch.optim.AdamW: fixture written by src/test/python/adamw_fixture.py. */
class AdamWTest {

  @Test
  void matchesTorchAdamWStepByStep() throws Exception {
    JsonNode fx;
    try (InputStream in = getClass().getResourceAsStream("/optim/adamw-torch.json")) {
      fx = new ObjectMapper().readTree(in);
    }
    AdamW adam = AdamW.huggingFaceDefaults();
    int maxUlps = 0;
    for (JsonNode nameNode : fx.get("names")) {
      String name = nameNode.asText();
      float[] p = floats(fx.get("initial").get(name));
      float[] m = new float[p.length];
      float[] v = new float[p.length];
      double wd = WeightDecayRule.decays(name) ? 0.01 : 0.0;
      int t = 0;
      for (JsonNode step : fx.get("steps")) {
        float[] g = floats(step.get("grads").get(name));
        adam.update(p, m, v, 0, g, 0, 1f, p.length, step.get("lr").asDouble(), wd, ++t);
        float[] want = floats(step.get("params").get(name));
        for (int i = 0; i < p.length; i++) {
          int ulps = Math.abs(Float.floatToIntBits(p[i]) - Float.floatToIntBits(want[i]));
          maxUlps = Math.max(maxUlps, ulps);
          assertEquals(
              want[i], p[i], 1e-6 * Math.abs(want[i]), name + "[" + i + "] after step " + t);
        }
      }
    }
    // Not just "close": the same float operations in the same order leave at most a few ulps.
    assertTrue(maxUlps <= 4, "max ulp distance to torch " + maxUlps);
  }

  @Test
  void gradScaleIsAppliedBeforeTheMoments() {
    AdamW adam = AdamW.huggingFaceDefaults();
    float[] p1 = {1f, -2f};
    float[] p2 = p1.clone();
    float[] m1 = new float[2];
    float[] v1 = new float[2];
    float[] m2 = new float[2];
    float[] v2 = new float[2];
    adam.update(p1, m1, v1, 0, new float[] {0.5f, 3f}, 0, 0.25f, 2, 1e-3, 0.1, 1);
    adam.update(p2, m2, v2, 0, new float[] {0.125f, 0.75f}, 0, 1f, 2, 1e-3, 0.1, 1);
    for (int i = 0; i < 2; i++) {
      assertEquals(p2[i], p1[i]);
      assertEquals(m2[i], m1[i]);
      assertEquals(v2[i], v1[i]);
    }
  }

  static float[] floats(JsonNode arr) {
    float[] out = new float[arr.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) arr.get(i).asDouble();
    }
    return out;
  }
}
