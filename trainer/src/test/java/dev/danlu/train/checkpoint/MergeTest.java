package dev.danlu.train.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Merging the PyTorch fixture adapter into its base model reproduces the merged weights PyTorch
 * computed (tiny-merged/), in one file or many shards, in F32 or F16; a fresh adapter changes
 * nothing; the independent numpy reader reads the output.
 */
class MergeTest {
  @TempDir Path tmp;
  Path base;
  Path adapter;
  static final ObjectMapper JSON = new ObjectMapper();

  @BeforeEach
  void copyFixtures() throws IOException {
    // Small blocks, so tensors are streamed in several row blocks even at this size.
    Merge.blockElems = 200;
    base = copyDir(ReferenceFixturesTest.dir().resolve("tiny-llama"), tmp.resolve("base"));
    adapter = copyDir(ReferenceFixturesTest.dir().resolve("tiny-adapter"), tmp.resolve("adapter"));
    Files.writeString(base.resolve("tokenizer.model"), "base-tokenizer");
    Files.writeString(base.resolve("generation_config.json"), "{\"do_sample\": false}");
    Files.writeString(adapter.resolve("tokenizer.model"), "resized-tokenizer");
    Files.writeString(adapter.resolve("special_tokens_map.json"), "{}");
  }

  @AfterEach
  void restore() {
    Merge.blockElems = 4 << 20;
  }

  static Path copyDir(Path from, Path to) throws IOException {
    Files.createDirectories(to);
    try (Stream<Path> s = Files.list(from)) {
      for (Path p : (Iterable<Path>) s::iterator) {
        Files.copy(p, to.resolve(p.getFileName()));
      }
    }
    return to;
  }

  static void assertClose(float[] want, float[] got, double rel, String what) {
    assertEquals(want.length, got.length, what);
    for (int i = 0; i < want.length; i++) {
      double tol = rel * Math.max(1, Math.abs(want[i]));
      if (Math.abs(want[i] - got[i]) > tol) {
        throw new AssertionError(what + "[" + i + "]: want " + want[i] + " got " + got[i]);
      }
    }
  }

  private Merge.Options opts(Path out, DType dt, long shardBytes) {
    return new Merge.Options(base, adapter, out, dt, shardBytes, false);
  }

  @Test
  void singleFileMatchesPyTorchMergedWeightsAndConfig() throws Exception {
    Path out = tmp.resolve("merged");
    Merge.Result r = Merge.run(opts(out, null, 1L << 30));
    assertEquals(14, r.loraMerged());
    assertEquals(147, r.vocabSize());
    assertEquals(List.of(out.resolve("model.safetensors")), r.shards());
    assertFalse(Files.exists(out.resolve(HfCheckpoint.INDEX)));
    Path ref = ReferenceFixturesTest.dir().resolve("tiny-merged");
    try (HfCheckpoint want = HfCheckpoint.open(ref);
        HfCheckpoint got = HfCheckpoint.open(out)) {
      assertEquals(want.names(), got.names());
      for (String n : want.names()) {
        assertArrayEquals(want.info(n).shape(), got.info(n).shape(), n);
        // Float32 product of float32 inputs vs PyTorch's float64: a few ulps.
        assertClose(want.readFloats(n), got.readFloats(n), 1e-6, n);
      }
    }
    JsonNode cfg = JSON.readTree(out.resolve("config.json").toFile());
    JsonNode baseCfg = JSON.readTree(base.resolve("config.json").toFile());
    assertEquals(147, cfg.get("vocab_size").asInt());
    for (Iterator<String> it = baseCfg.fieldNames(); it.hasNext(); ) {
      String k = it.next();
      if (!k.equals("vocab_size")) {
        assertEquals(baseCfg.get(k), cfg.get(k), "config key " + k + " copied verbatim");
      }
    }
    assertEquals("resized-tokenizer", Files.readString(out.resolve("tokenizer.model")));
    assertTrue(Files.exists(out.resolve("special_tokens_map.json")));
    assertTrue(Files.exists(out.resolve("generation_config.json")));
  }

  @Test
  void shardedF16OutputHasAnIndexAndNumpyReadsIt() throws Exception {
    Path out = tmp.resolve("sharded");
    Merge.Result r = Merge.run(opts(out, DType.F16, 20_000));
    assertTrue(r.shards().size() > 3, "shards: " + r.shards().size());
    JsonNode index = JSON.readTree(out.resolve(HfCheckpoint.INDEX).toFile());
    assertEquals(r.totalBytes(), index.get("metadata").get("total_size").asLong());
    assertEquals(
        "float16", JSON.readTree(out.resolve("config.json").toFile()).get("torch_dtype").asText());
    String last =
        String.format("model-%05d-of-%05d.safetensors", r.shards().size(), r.shards().size());
    assertTrue(Files.exists(out.resolve(last)), last);
    Map<String, float[]> got = new LinkedHashMap<>();
    try (HfCheckpoint want = HfCheckpoint.open(ReferenceFixturesTest.dir().resolve("tiny-merged"));
        HfCheckpoint ck = HfCheckpoint.open(out)) {
      assertEquals(want.names().size(), ck.names().size());
      long total = 0;
      for (String n : want.names()) {
        assertEquals(DType.F16, ck.info(n).dtype());
        got.put(n, ck.readFloats(n));
        assertClose(want.readFloats(n), got.get(n), 1.0 / 1024, n); // half an f16 ulp, relative
        total += ck.info(n).byteSize();
        assertEquals(
            ck.shardOf(n).file().getFileName().toString(), index.get("weight_map").get(n).asText());
      }
      assertEquals(r.totalBytes(), total);
    }
    PythonReader.assumeAvailable();
    JsonNode py = PythonReader.summary(r.shards().toArray(Path[]::new));
    int seen = 0;
    for (JsonNode file : py) {
      for (Iterator<Map.Entry<String, JsonNode>> it = file.get("tensors").fields();
          it.hasNext(); ) {
        var e = it.next();
        assertEquals("F16", e.getValue().get("dtype").asText());
        assertEquals(
            PythonReader.sumsq(got.get(e.getKey())),
            e.getValue().get("sumsq").asDouble(),
            1e-6 * PythonReader.sumsq(got.get(e.getKey())),
            e.getKey());
        seen++;
      }
    }
    assertEquals(got.size(), seen);
  }

  @Test
  void freshAdapterLeavesProjectionsBitIdentical() throws Exception {
    PeftAdapter trained = PeftAdapter.load(adapter);
    Map<String, FloatTensor> fresh = new LinkedHashMap<>();
    trained
        .tensors()
        .forEach(
            (k, v) -> {
              if (k.contains(".lora_B.")) {
                fresh.put(k, new FloatTensor(v.shape(), new float[v.data().length]));
              } else if (k.contains(".lora_A.")) {
                fresh.put(k, v);
              }
            });
    AdapterConfig c = trained.config();
    Path freshDir = tmp.resolve("fresh");
    new PeftAdapter(
            new AdapterConfig(
                c.r(),
                c.loraAlpha(),
                c.loraDropout(),
                c.targetModules(),
                List.of(),
                c.bias(),
                false,
                true,
                c.baseModelNameOrPath(),
                c.peftType(),
                c.taskType(),
                true),
            fresh)
        .save(freshDir);
    Path out = tmp.resolve("fresh-merged");
    Merge.Result r = Merge.run(new Merge.Options(base, freshDir, out, null, 1L << 30, false));
    assertEquals(131, r.vocabSize());
    try (HfCheckpoint b = HfCheckpoint.open(base);
        HfCheckpoint m = HfCheckpoint.open(out)) {
      for (String n : b.names()) {
        assertArrayEquals(b.readFloats(n), m.readFloats(n), n);
      }
    }
    // The base had no tokenizer in the adapter dir now: files come from the base.
    assertEquals("base-tokenizer", Files.readString(out.resolve("tokenizer.model")));
  }

  @Test
  void tiedBaseGetsTheAdaptersLmHeadAndIsUntied() throws Exception {
    Path tied =
        copyDir(ReferenceFixturesTest.dir().resolve("tiny-llama-tied"), tmp.resolve("tied"));
    Path out = tmp.resolve("untied");
    Merge.run(new Merge.Options(tied, adapter, out, null, 1L << 30, false));
    assertFalse(
        JSON.readTree(out.resolve("config.json").toFile()).get("tie_word_embeddings").asBoolean());
    try (HfCheckpoint m = HfCheckpoint.open(out);
        HfCheckpoint want = HfCheckpoint.open(ReferenceFixturesTest.dir().resolve("tiny-merged"))) {
      assertArrayEquals(want.readFloats("lm_head.weight"), m.readFloats("lm_head.weight"));
    }
  }

  @Test
  void tiedBaseStoringLmHeadGetsTheTrainedEmbeddingThere() throws Exception {
    // Like stories260K: tie_word_embeddings true, yet the file stores lm_head.weight too.
    Path tiedWithHead = copyDir(base, tmp.resolve("tied-with-head"));
    String cfg = Files.readString(tiedWithHead.resolve("config.json"));
    Files.writeString(
        tiedWithHead.resolve("config.json"),
        cfg.replace("\"tie_word_embeddings\": false", "\"tie_word_embeddings\": true"));
    PeftAdapter full = PeftAdapter.load(adapter);
    Map<String, FloatTensor> noHead = new LinkedHashMap<>(full.tensors());
    noHead.remove(PeftAdapter.LM_HEAD_KEY);
    AdapterConfig c = full.config();
    Path embedOnly = tmp.resolve("embed-only");
    new PeftAdapter(
            new AdapterConfig(
                c.r(),
                c.loraAlpha(),
                c.loraDropout(),
                c.targetModules(),
                List.of("embed_tokens"),
                "none",
                false,
                true,
                null,
                "LORA",
                "CAUSAL_LM",
                true),
            noHead)
        .save(embedOnly);
    Path out = tmp.resolve("tied-out");
    Merge.Result r =
        Merge.run(new Merge.Options(tiedWithHead, embedOnly, out, null, 1L << 30, false));
    assertEquals(147, r.vocabSize());
    assertTrue(
        JSON.readTree(out.resolve("config.json").toFile()).get("tie_word_embeddings").asBoolean());
    try (HfCheckpoint m = HfCheckpoint.open(out)) {
      assertArrayEquals(full.embedTokens().orElseThrow().data(), m.readFloats("lm_head.weight"));
      assertArrayEquals(m.readFloats("model.embed_tokens.weight"), m.readFloats("lm_head.weight"));
    }
  }

  @Test
  void refusesMismatchesAndExistingOutput() throws Exception {
    Path out = tmp.resolve("once");
    Merge.run(opts(out, null, 1L << 30));
    IOException e = assertThrows(IOException.class, () -> Merge.run(opts(out, null, 1L << 30)));
    assertTrue(e.getMessage().contains("--overwrite"), e.getMessage());
    Merge.run(new Merge.Options(base, adapter, out, DType.BF16, 1L << 30, true));
    try (HfCheckpoint m = HfCheckpoint.open(out)) {
      assertEquals(DType.BF16, m.info("lm_head.weight").dtype());
    }
    e = assertThrows(IOException.class, () -> Merge.run(opts(base, null, 1L << 30)));
    assertTrue(e.getMessage().contains("must differ"), e.getMessage());
    // The adapter belongs to another model: stories-like shapes do not fit.
    Path other = tmp.resolve("other");
    Files.createDirectories(other);
    Files.copy(base.resolve("config.json"), other.resolve("config.json"));
    Map<String, FloatTensor> w = new LinkedHashMap<>();
    try (HfCheckpoint b = HfCheckpoint.open(base)) {
      for (String n : b.names()) {
        long[] s = b.info(n).shape();
        if (n.endsWith("q_proj.weight")) {
          s = new long[] {s[0], 2 * s[1]};
        }
        w.put(n, new FloatTensor(s, new float[(int) TensorInfo.numel(s)]));
      }
    }
    SafeTensorsWriter.write(other.resolve("model.safetensors"), w, DType.F32, Map.of());
    e =
        assertThrows(
            IOException.class,
            () ->
                Merge.run(
                    new Merge.Options(other, adapter, tmp.resolve("x"), null, 1L << 30, false)));
    assertTrue(
        e.getMessage().contains("q_proj") && e.getMessage().contains("does not fit"),
        e.getMessage());
  }

  @Test
  void cliParsesOptionsAndReportsUsageErrors() throws Exception {
    assertEquals(2, MergeCli.run(new String[] {"--base", base.toString()}));
    assertEquals(2, MergeCli.run(new String[] {"--dtype", "q8"}));
    assertEquals(2, MergeCli.run(new String[] {"--shard-size-mb", "x"}));
    assertEquals(
        1,
        MergeCli.run(
            new String[] {
              "--base",
              tmp.resolve("missing").toString(),
              "--adapter",
              adapter.toString(),
              "--output",
              tmp.resolve("never").toString()
            }));
    Path out = tmp.resolve("cli");
    assertEquals(
        0,
        MergeCli.run(
            new String[] {
              "--base",
              base.toString(),
              "--adapter",
              adapter.toString(),
              "--output",
              out.toString(),
              "--dtype",
              "bf16",
              "--shard-size-mb",
              "1"
            }));
    try (HfCheckpoint m = HfCheckpoint.open(out)) {
      assertEquals(DType.BF16, m.info("model.norm.weight").dtype());
    }
  }
}
