package dev.danlu.train.export;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.danlu.testkit.Prereq;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.RandomInit;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * danlu's quantizers against the real ggml library (node-llama-cpp's prebuilt libggml-base.so,
 * through src/test/python/ggml_oracle.py): byte for byte per row, and per file against llama.cpp's
 * own llama_model_quantize of danlu's f32 export (which also checks the _M mixture rules, the
 * fallbacks and the metadata). Bitwise is right here: both sides run the same float32 operations in
 * the same order without fused multiply-add (see {@link Quantize}).
 */
class QuantizeOracleTest {
  static final int ROW = 512; // two k-quant super-blocks, sixteen 32-blocks

  @TempDir Path tmp;

  /** Rows that reach every branch: typical weights, outliers, zeros, tiny values, ties, signs. */
  static float[] trickyRows() {
    SplittableRandom r = new SplittableRandom(20241202);
    List<float[]> rows = new ArrayList<>();
    for (int k = 0; k < 8; k++) {
      float[] g = new float[ROW];
      for (int i = 0; i < ROW; i++) {
        g[i] = (float) (0.02 * gauss(r));
      }
      rows.add(g);
    }
    float[] outliers = rows.get(0).clone();
    for (int i = 0; i < ROW; i += 37) {
      outliers[i] *= 60;
    }
    rows.add(outliers);
    rows.add(new float[ROW]); // all zero
    float[] tiny = new float[ROW];
    float[] small = new float[ROW];
    float[] positive = new float[ROW];
    float[] negative = new float[ROW];
    float[] constant = new float[ROW];
    float[] halves = new float[ROW];
    float[] uniform = new float[ROW];
    float[] mixed = new float[ROW];
    for (int i = 0; i < ROW; i++) {
      tiny[i] = (float) (1e-20 * gauss(r));
      small[i] = (float) (1e-7 * gauss(r));
      positive[i] = (float) Math.abs(0.05 * gauss(r)) + 0.01f;
      negative[i] = -(float) Math.abs(0.05 * gauss(r)) - 0.01f;
      constant[i] = 0.375f;
      halves[i] = (i % 17 - 8) * 0.5f; // exact ties for the rounding
      uniform[i] = (float) (2 * r.nextDouble() - 1);
      mixed[i] = i % 64 < 32 ? 0f : (float) gauss(r); // zero sub-blocks next to live ones
    }
    rows.addAll(List.of(tiny, small, positive, negative, constant, halves, uniform, mixed));
    float[] laplace = new float[ROW];
    for (int i = 0; i < ROW; i++) {
      double u = r.nextDouble() - 0.5;
      laplace[i] = (float) (-0.01 * Math.signum(u) * Math.log(1 - 2 * Math.abs(u)));
    }
    rows.add(laplace);
    float[] all = new float[rows.size() * ROW];
    for (int k = 0; k < rows.size(); k++) {
      System.arraycopy(rows.get(k), 0, all, k * ROW, ROW);
    }
    return all;
  }

  static double gauss(SplittableRandom r) {
    return Math.sqrt(-2 * Math.log(1 - r.nextDouble())) * Math.cos(2 * Math.PI * r.nextDouble());
  }

  @Test
  void everyTypeIsByteIdenticalToGgmlAndRoundTripsWithinItsStep() throws Exception {
    float[] x = trickyRows();
    Path in = tmp.resolve("x.f32");
    writeFloats(in, x);
    GgmlType[] types = {
      GgmlType.F16,
      GgmlType.Q8_0,
      GgmlType.Q4_0,
      GgmlType.Q5_0,
      GgmlType.Q5_1,
      GgmlType.Q4_K,
      GgmlType.Q5_K,
      GgmlType.Q6_K
    };
    // relative RMS error of the 8 gaussian rows after quantize + ggml's dequantize; measured
    // 2024-12-02 (f16 5e-4 .. q4_0 0.11) with a margin of about 1.5x: a scale bug would be far off
    Map<GgmlType, Double> bound =
        Map.of(
            GgmlType.F16,
            1e-3,
            GgmlType.Q8_0,
            0.012,
            GgmlType.Q4_0,
            0.16,
            GgmlType.Q5_0,
            0.08,
            GgmlType.Q5_1,
            0.07,
            GgmlType.Q4_K,
            0.13,
            GgmlType.Q5_K,
            0.065,
            GgmlType.Q6_K,
            0.03);
    StringBuilder report = new StringBuilder();
    for (GgmlType t : types) {
      byte[] mine = new byte[(int) (t.rowBytes(ROW) * (x.length / ROW))];
      for (int row = 0; row < x.length / ROW; row++) {
        Quantize.quantize(t, x, row * ROW, ROW, mine, (int) (row * t.rowBytes(ROW)));
      }
      Path ref = tmp.resolve(t + ".bin");
      LlamaCpp.oracle("quantize", "" + t.id(), "" + ROW, in.toString(), ref.toString());
      byte[] theirs = Files.readAllBytes(ref);
      assertEquals(theirs.length, mine.length, t + " size");
      for (int i = 0; i < mine.length; i++) {
        if (mine[i] != theirs[i]) {
          long blockBytes = t.typeSize();
          fail(
              t
                  + ": byte "
                  + i
                  + " (row "
                  + i / t.rowBytes(ROW)
                  + ", block "
                  + (i % t.rowBytes(ROW)) / blockBytes
                  + ", byte "
                  + i % blockBytes
                  + " of the block)"
                  + " is "
                  + mine[i]
                  + ", ggml wrote "
                  + theirs[i]);
        }
      }
      Path deq = tmp.resolve(t + ".f32");
      LlamaCpp.oracle("dequantize", "" + t.id(), "" + x.length, ref.toString(), deq.toString());
      float[] y = readFloats(deq);
      double err = 0;
      double ref2 = 0;
      for (int i = 0; i < 8 * ROW; i++) {
        err += (x[i] - y[i]) * (double) (x[i] - y[i]);
        ref2 += x[i] * (double) x[i];
      }
      double rel = Math.sqrt(err / ref2);
      report.append(String.format("%s %.2e; ", t.ggmlName(), rel));
      assertTrue(rel <= bound.get(t), t + " relative RMS error " + rel + " > " + bound.get(t));
      // q8_0's and q4_0's worst case per element follows from the block scale
      if (t == GgmlType.Q8_0 || t == GgmlType.Q4_0) {
        for (int b = 0; b < x.length / 32; b++) {
          float d =
              dev.danlu.train.tensor.HalfFloats.f16ToFloat(
                  (theirs[b * t.typeSize()] & 0xff) | (theirs[b * t.typeSize() + 1] & 0xff) << 8);
          // |x - q·d16| <= |x - q·d| + |q|·|d - d16|: half a step (q8_0; a whole one for q4_0,
          // whose largest level is clamped from 16 to 15) plus |q| <= 127 (8) times the fp16
          // rounding of d (2^-11 relative, or 2^-25 absolute below fp16's normal range, where a
          // tiny block's d becomes 0), with 2^-10 slack for the float arithmetic
          float steps = t == GgmlType.Q8_0 ? 0.5f + 127f / 2048 : 1f + 8f / 2048;
          float qMax = t == GgmlType.Q8_0 ? 128 : 9;
          float limit = steps * Math.abs(d) * (1 + 1f / 1024) + qMax * 0x1p-25f;
          for (int i = b * 32; i < b * 32 + 32; i++) {
            assertTrue(Math.abs(x[i] - y[i]) <= limit, t + " element " + i + " error");
          }
        }
      }
    }
    System.out.println("QuantizeOracleTest round-trip relative RMS: " + report);
  }

  /** A 12-layer model with 256-wide rows (k-quants without fallback), tied embeddings. */
  @Test
  void wholeFilesEqualLlamaQuantizeOfTheF32Export() throws Exception {
    LlamaCpp.dir();
    Path tok = Prereq.shared("fixtures/stories260K/tokenizer.model");
    LlamaConfig c = new LlamaConfig(256, 512, 12, 4, 2, 512, 1e-5, 10000.0, null, true, 256);
    Path model = tmp.resolve("tiny12");
    RandomInit.writeHfDir(model, c, 7, tok);
    compareWithLlamaQuantize(model, "tiny12");
    // stories260K: 64- and 172-wide rows, so every k-quant falls back (q5_0, q5_1, q8_0, f16)
    compareWithLlamaQuantize(Prereq.shared("fixtures/stories260K"), "s260k");
  }

  private void compareWithLlamaQuantize(Path model, String name) throws Exception {
    Path f32 = tmp.resolve(name + "-f32.gguf");
    GgufExport.run(new GgufExport.Options(model, null, f32, ExportType.F32, 0, false));
    for (ExportType t :
        List.of(
            ExportType.Q8_0,
            ExportType.Q4_0,
            ExportType.Q4_K_M,
            ExportType.Q5_K_M,
            ExportType.Q6_K)) {
      Path mine = tmp.resolve(name + "-" + t.cliName() + ".gguf");
      GgufExport.run(new GgufExport.Options(model, null, mine, t, 0, false));
      Path theirs = tmp.resolve(name + "-" + t.cliName() + "-llama.gguf");
      LlamaCpp.oracle("quantize-model", f32.toString(), theirs.toString(), "" + t.ftype());
      GgufFile a = GgufFile.open(mine);
      GgufFile b = GgufFile.open(theirs);
      Map<String, String> ta = new TreeMap<>();
      Map<String, String> tb = new TreeMap<>();
      a.tensors().forEach((k, v) -> ta.put(k, v.spec().type().ggmlName()));
      b.tensors().forEach((k, v) -> tb.put(k, v.spec().type().ggmlName()));
      assertEquals(tb, ta, name + " " + t + ": tensor types");
      for (String tn : a.tensors().keySet()) {
        assertTrue(
            java.util.Arrays.equals(b.readTensor(tn), a.readTensor(tn)),
            name + " " + t + ": tensor " + tn + " bytes differ from llama-quantize's");
      }
      Map<String, String> ka = new TreeMap<>();
      Map<String, String> kb = new TreeMap<>();
      a.metadata().forEach((k, v) -> ka.put(k, v.render() + v.value().hashCode()));
      b.metadata().forEach((k, v) -> kb.put(k, v.render() + v.value().hashCode()));
      assertEquals(kb, ka, name + " " + t + ": metadata");
    }
  }

  static void writeFloats(Path p, float[] x) throws java.io.IOException {
    ByteBuffer b = ByteBuffer.allocate(4 * x.length).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(x);
    Files.write(p, b.array());
  }

  static float[] readFloats(Path p) throws java.io.IOException {
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(p)).order(ByteOrder.LITTLE_ENDIAN);
    float[] x = new float[b.remaining() / 4];
    b.asFloatBuffer().get(x);
    return x;
  }
}
