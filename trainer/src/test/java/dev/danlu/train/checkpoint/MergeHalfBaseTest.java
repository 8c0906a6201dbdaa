package dev.danlu.train.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.train.tensor.HalfFloats;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code danlu merge} without {@code --dtype} writes the merged model in the base checkpoint's
 * dtype: with the float16 / bfloat16 tiny-llama torch saved, every output tensor has that dtype,
 * config.json keeps its torch_dtype, copied tensors keep their bits, the adapter's trained
 * embed_tokens / lm_head are rounded to nearest-even, and each merged projection is the base weight
 * plus B·A·alpha/r (computed here in float64 from the files) rounded once.
 */
class MergeHalfBaseTest {
  @TempDir Path tmp;

  @ParameterizedTest
  @CsvSource({"f16, F16, float16", "bf16, BF16, bfloat16"})
  void mergedModelKeepsTheBaseDtype(String tag, String dtype, String torchName) throws Exception {
    Path ref = ReferenceFixturesTest.dir();
    Path base = ref.resolve("tiny-llama-" + tag);
    Path adapter = ref.resolve("tiny-adapter");
    Path out = tmp.resolve("merged");
    Merge.Result r = Merge.run(new Merge.Options(base, adapter, out, null, 1L << 30, false));
    assertEquals(14, r.loraMerged());
    DType dt = DType.valueOf(dtype);
    assertEquals(
        torchName,
        new ObjectMapper()
            .readTree(out.resolve("config.json").toFile())
            .get("torch_dtype")
            .asText());
    try (HfCheckpoint in = HfCheckpoint.open(base);
        HfCheckpoint m = HfCheckpoint.open(out);
        SafeTensors ad = SafeTensors.open(adapter.resolve("adapter_model.safetensors"))) {
      int merged = 0;
      for (String name : m.names()) {
        assertEquals(dt, m.info(name).dtype(), name);
        String module = name.substring(0, name.length() - ".weight".length());
        String a = PeftAdapter.PREFIX + module + ".lora_A.weight";
        if (name.endsWith("_proj.weight") && ad.contains(a)) {
          float[] w = in.readFloats(name);
          float[] am = ad.readFloats(a);
          float[] bm = ad.readFloats(PeftAdapter.PREFIX + module + ".lora_B.weight");
          int rank = 4;
          int cols = (int) in.info(name).shape()[1];
          short[] got = bits(m.readBytes(name));
          for (int o = 0; o < w.length / cols; o++) {
            for (int i = 0; i < cols; i++) {
              double d = 0;
              for (int k = 0; k < rank; k++) {
                d += (double) bm[o * rank + k] * am[k * cols + i];
              }
              float want = (float) (w[o * cols + i] + d * 1.5);
              int n = o * cols + i;
              // LoraDelta sums in float32, so allow the neighbour of the float64 rounding
              int diff = Math.abs(round(want, dt) - got[n]);
              assertTrue(diff <= 1, name + "[" + n + "]: " + diff + " ulps");
            }
          }
          merged++;
        } else if (name.equals("model.embed_tokens.weight") || name.equals("lm_head.weight")) {
          float[] trained = ad.readFloats(PeftAdapter.PREFIX + name);
          short[] got = bits(m.readBytes(name));
          for (int i = 0; i < trained.length; i++) {
            assertEquals(round(trained[i], dt), got[i], name + "[" + i + "]");
          }
        } else {
          assertArrayEquals(
              bits(in.readBytes(name)), bits(m.readBytes(name)), name + " copied unchanged");
        }
      }
      assertEquals(14, merged);
    }
  }

  private static short round(float v, DType dt) {
    return dt == DType.F16 ? HalfFloats.floatToF16(v) : HalfFloats.floatToBf16(v);
  }

  private static short[] bits(ByteBuffer b) {
    short[] out = new short[b.remaining() / 2];
    b.duplicate().order(ByteOrder.LITTLE_ENDIAN).asShortBuffer().get(out);
    return out;
  }
}
