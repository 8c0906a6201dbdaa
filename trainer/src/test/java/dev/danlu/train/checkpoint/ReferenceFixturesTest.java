package dev.danlu.train.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The committed PyTorch fixtures (see src/test/resources/reference/README.md) open with our readers
 * and have the names and shapes the model tests rely on. The numeric comparisons live with the
 * model code; this pins the file contract.
 */
class ReferenceFixturesTest {
  static final String P = "base_model.model.";
  static final String[] ATTN = {"q_proj", "k_proj", "v_proj", "o_proj"};
  static final String[] MLP = {"gate_proj", "up_proj", "down_proj"};

  static Path dir() {
    try {
      return Path.of(ReferenceFixturesTest.class.getResource("/reference/README.md").toURI())
          .getParent();
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  /** [out, in] of a projection in the tiny config. */
  static long[] shape(String proj) {
    return switch (proj) {
      case "q_proj", "o_proj" -> new long[] {32, 32};
      case "k_proj", "v_proj" -> new long[] {16, 32};
      case "gate_proj", "up_proj" -> new long[] {88, 32};
      case "down_proj" -> new long[] {32, 88};
      default -> throw new IllegalArgumentException(proj);
    };
  }

  static List<String> loraModules() {
    List<String> out = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      for (String a : ATTN) {
        out.add("model.layers." + i + ".self_attn." + a);
      }
      for (String m : MLP) {
        out.add("model.layers." + i + ".mlp." + m);
      }
    }
    return out;
  }

  @Test
  void baseModelDirectoriesOpen() throws IOException {
    try (HfCheckpoint base = HfCheckpoint.open(dir().resolve("tiny-llama"));
        HfCheckpoint tied = HfCheckpoint.open(dir().resolve("tiny-llama-tied"));
        HfCheckpoint merged = HfCheckpoint.open(dir().resolve("tiny-merged"))) {
      assertEquals(2 * 9 + 3, base.names().size());
      assertEquals(base.names().size() - 1, tied.names().size());
      assertFalse(tied.contains("lm_head.weight"));
      assertEquals(base.names(), merged.names());
      assertArrayEquals(new long[] {131, 32}, base.info("model.embed_tokens.weight").shape());
      assertArrayEquals(new long[] {147, 32}, merged.info("lm_head.weight").shape());
      for (String m : loraModules()) {
        String proj = m.substring(m.lastIndexOf('.') + 1);
        assertArrayEquals(shape(proj), base.info(m + ".weight").shape(), m);
        assertEquals(DType.F32, base.info(m + ".weight").dtype());
      }
      assertArrayEquals(base.readFloats("model.norm.weight"), tied.readFloats("model.norm.weight"));
    }
    ObjectMapper om = new ObjectMapper();
    JsonNode cfg = om.readTree(dir().resolve("tiny-llama/config.json").toFile());
    assertEquals(131, cfg.get("vocab_size").asInt());
    assertEquals(2, cfg.get("num_key_value_heads").asInt());
    assertEquals(
        147,
        om.readTree(dir().resolve("tiny-merged/config.json").toFile()).get("vocab_size").asInt());
    JsonNode dyn = om.readTree(dir().resolve("rope-dynamic.config.json").toFile());
    assertEquals("dynamic", dyn.get("rope_scaling").get("type").asText());
    assertEquals(4, dyn.get("max_position_embeddings").asInt());
  }

  @Test
  void adapterAndGradientsUsePeftNamesAndLayouts() throws IOException {
    try (SafeTensors ad =
            SafeTensors.open(dir().resolve("tiny-adapter/adapter_model.safetensors"));
        SafeTensors gr = SafeTensors.open(dir().resolve("grads.safetensors"))) {
      assertEquals(28 + 2, ad.names().size());
      assertEquals(ad.names(), gr.names());
      for (String m : loraModules()) {
        long[] s = shape(m.substring(m.lastIndexOf('.') + 1));
        String a = P + m + ".lora_A.weight";
        String b = P + m + ".lora_B.weight";
        assertArrayEquals(new long[] {4, s[1]}, ad.info(a).shape(), a);
        assertArrayEquals(new long[] {s[0], 4}, ad.info(b).shape(), b);
        assertArrayEquals(ad.info(a).shape(), gr.info(a).shape());
        assertTrue(maxAbs(gr.readFloats(a)) > 1e-4, "dA non-zero: " + a);
        assertTrue(maxAbs(ad.readFloats(b)) > 0, "B non-zero: " + b);
      }
      assertArrayEquals(new long[] {147, 32}, ad.info(P + "model.embed_tokens.weight").shape());
      assertArrayEquals(new long[] {147, 32}, gr.info(P + "lm_head.weight").shape());
    }
  }

  @Test
  void ioTensorsHaveTheDocumentedShapes() throws IOException {
    try (SafeTensors io = SafeTensors.open(dir().resolve("io.safetensors"))) {
      assertEquals(DType.I64, io.info("input_ids").dtype());
      long[] ids = io.readLongs("input_ids");
      long[] mask = io.readLongs("attention_mask");
      long[] labels = io.readLongs("labels");
      assertArrayEquals(new long[] {1, 17, 140, 55, 131, 99, 2}, java.util.Arrays.copyOf(ids, 7));
      assertEquals(0, mask[12] + mask[13]);
      assertEquals(-100, labels[13]);
      assertArrayEquals(new long[] {2, 7, 147}, io.info("logits").shape());
      assertArrayEquals(new long[] {}, io.info("loss").shape());
      float loss = io.readFloats("loss")[0];
      assertTrue(loss > 4 && loss < 6, "loss near ln(147): " + loss);
      assertArrayEquals(new long[] {2, 7, 131}, io.info("base_logits").shape());
      assertArrayEquals(new long[] {2, 7, 131}, io.info("tied_logits").shape());
      assertArrayEquals(new long[] {2, 7, 147}, io.info("rope_linear_logits").shape());
      assertArrayEquals(new long[] {2, 7, 147}, io.info("rope_dynamic_logits").shape());
      for (long id : io.readLongs("base_input_ids")) {
        assertTrue(id < 131);
      }
    }
  }

  @Test
  void committedFixturesAreExactlyWhatTheScriptWrites(@TempDir Path out) throws Exception {
    PythonReader.assumeAvailable("torch");
    PythonReader.Result r =
        PythonReader.run(List.of("src/test/python/make_reference.py", "--out", out.toString()));
    assertEquals(0, r.exit(), r.out());
    List<Path> made;
    try (Stream<Path> s = Files.walk(out)) {
      made = s.filter(Files::isRegularFile).toList();
    }
    Path committedDir = Path.of("src/test/resources/reference");
    try (Stream<Path> s = Files.walk(committedDir)) {
      assertEquals(
          s.filter(Files::isRegularFile)
              .map(p -> committedDir.relativize(p).toString())
              .filter(n -> !n.equals("README.md"))
              .sorted()
              .toList(),
          made.stream().map(p -> out.relativize(p).toString()).sorted().toList(),
          "the script writes exactly the committed fixture files");
    }
    for (Path f : made) {
      String rel = out.relativize(f).toString();
      Path committed = committedDir.resolve(rel);
      if (COMPUTED.contains(rel)) {
        assertComputedMatch(committed, f);
      } else {
        // parameters, configs, integer and 16-bit tensors come from the seeded generator and
        // elementwise roundings only (no sums), so every CPU writes the same bytes
        assertArrayEquals(
            Files.readAllBytes(committed),
            Files.readAllBytes(f),
            committed + " differs from a fresh run of make_reference.py: regenerate and commit");
      }
    }
  }

  /** Files holding results of float64 products and sums (logits, losses, gradients, merges). */
  static final java.util.Set<String> COMPUTED =
      java.util.Set.of(
          "io.safetensors",
          "grads.safetensors",
          "half.safetensors",
          "tiny-merged/model.safetensors");

  /**
   * Same names, dtypes and shapes; non-F32 tensors byte for byte; F32 tensors within one ulp. Not
   * bytes: the script sums in float64 through torch's BLAS, whose kernels (chosen per CPU) may
   * order a sum differently and move the float64 result by ~1e-16 relative; rounding that to
   * float32 gives the committed value or, rarely, its neighbour, never anything further.
   */
  static void assertComputedMatch(Path committed, Path fresh) throws IOException {
    try (SafeTensors a = SafeTensors.open(committed);
        SafeTensors b = SafeTensors.open(fresh)) {
      assertEquals(a.names(), b.names(), committed.toString());
      for (String n : a.names()) {
        assertEquals(a.info(n).dtype(), b.info(n).dtype(), committed + " " + n);
        assertArrayEquals(a.info(n).shape(), b.info(n).shape(), committed + " " + n);
        if (a.info(n).dtype() == DType.F32) {
          long ulps = dev.danlu.testkit.Floats.maxUlpDistance(a.readFloats(n), b.readFloats(n));
          assertTrue(ulps <= 1, committed + " " + n + ": " + ulps + " ulps from a fresh run");
        } else {
          assertEquals(a.readBytes(n), b.readBytes(n), committed + " " + n);
        }
      }
    }
  }

  static double maxAbs(float[] a) {
    double m = 0;
    for (float v : a) {
      m = Math.max(m, Math.abs(v));
    }
    return m;
  }
}
