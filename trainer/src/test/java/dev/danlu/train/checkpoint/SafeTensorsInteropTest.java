package dev.danlu.train.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Files from {@link SafeTensorsWriter} read by an independent reader (Python json + numpy), and our
 * float16/bfloat16 rounding compared bit for bit with numpy's and torch's.
 */
class SafeTensorsInteropTest {
  @TempDir Path tmp;

  @Test
  void numpyReadsWhatWeWrite() throws Exception {
    PythonReader.assumeAvailable();
    Map<String, FloatTensor> m = new LinkedHashMap<>();
    m.put("layers.0.w", FloatTensor.of(SafeTensorsTest.random(24, 1), 4, 6));
    m.put("scalar", FloatTensor.of(new float[] {-2.5f}));
    m.put("v", FloatTensor.of(SafeTensorsTest.random(7, 2), 7));
    Path p = tmp.resolve("x.safetensors");
    SafeTensorsWriter.write(p, m, DType.F32, Map.of("format", "pt", "note", "ünïcode"));
    JsonNode f = PythonReader.summary(p).get(p.toString());
    assertEquals("pt", f.get("metadata").get("format").asText());
    assertEquals("ünïcode", f.get("metadata").get("note").asText());
    JsonNode ts = f.get("tensors");
    assertEquals(3, ts.size());
    for (var e : m.entrySet()) {
      JsonNode t = ts.get(e.getKey());
      assertEquals("F32", t.get("dtype").asText());
      assertEquals(e.getValue().shape().length, t.get("shape").size());
      for (int i = 0; i < t.get("shape").size(); i++) {
        assertEquals(e.getValue().shape()[i], t.get("shape").get(i).asLong());
      }
      assertEquals(PythonReader.sum(e.getValue().data()), t.get("sum").asDouble(), 1e-9);
      assertEquals(e.getValue().data()[0], t.get("first").asDouble(), 0);
    }
  }

  @Test
  void halfRoundingMatchesNumpyAndTorchBitForBit() throws Exception {
    PythonReader.assumeAvailable("torch");
    Random r = new Random(11);
    float[] x = new float[4000];
    for (int i = 0; i < x.length; i++) {
      // Magnitudes from f16-subnormal to f16-overflow, so every rounding branch is taken.
      x[i] = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(14) - 9));
    }
    List<Float> special =
        List.of(
            0f,
            -0f,
            Float.POSITIVE_INFINITY,
            Float.NEGATIVE_INFINITY,
            Float.NaN,
            65504f,
            65520f, // rounds to infinity in f16
            1f + 0x1p-11f, // tie: rounds down to even
            1f + 3 * 0x1p-11f, // tie: rounds up to even
            0x1p-25f, // half the smallest subnormal: ties to zero
            3 * 0x1p-26f,
            0x1p-14f - 0x1p-25f, // rounds up into the smallest normal
            Float.MIN_VALUE,
            Float.MAX_VALUE,
            1f + 0x1p-8f, // bf16 tie
            1f + 3 * 0x1p-8f);
    for (int i = 0; i < special.size(); i++) {
      x[i] = special.get(i);
    }
    Path p = tmp.resolve("r.safetensors");
    try (SafeTensorsWriter w =
        SafeTensorsWriter.builder(p)
            .declare("x.f32", DType.F32, x.length)
            .declare("x.f16", DType.F16, x.length)
            .declare("x.bf16", DType.BF16, x.length)
            .open()) {
      w.writeFloats(x);
      w.writeFloats(x);
      w.writeFloats(x);
    }
    PythonReader.Result res =
        PythonReader.run(List.of(PythonReader.SCRIPT.toString(), "rounding", p.toString()));
    assertEquals("ok 2", res.out().trim(), res.out());
  }
}
