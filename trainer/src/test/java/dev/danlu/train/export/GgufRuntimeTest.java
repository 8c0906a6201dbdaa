package dev.danlu.train.export;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.testkit.Prereq;
import dev.danlu.train.checkpoint.AdapterConfig;
import dev.danlu.train.checkpoint.FloatTensor;
import dev.danlu.train.checkpoint.Merge;
import dev.danlu.train.checkpoint.PeftAdapter;
import dev.danlu.train.model.Generator;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.model.Sampler;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * danlu's GGUF exports in a real llama.cpp (node-llama-cpp 3.21.1's prebuilt binaries, {@link
 * LlamaCpp}): greedy continuations equal danlu's generate, for stories260K and for a merged base +
 * adapter (merged on the fly, and as base + LoRA GGUF applied by llama.cpp); llama.cpp's next-token
 * probabilities on a held-out text agree with danlu's forward, so their perplexities agree.
 */
class GgufRuntimeTest {
  /** Held-out text for the perplexity comparison (written for this test, not model output). */
  static final String TEXT =
      "Tom had a small red boat. Every morning he took it to the pond behind his house. One day"
          + " the wind was strong and the boat went far away. Tom was sad and sat on the grass."
          + " His sister Mia came and said, \"Do not cry. We can find it together.\" They walked"
          + " around the pond and saw the boat near a big rock. Mia held Tom's hand while he"
          + " reached for it. They went home happy and ate warm bread with their mom.";

  @TempDir Path tmp;

  static Path stories() {
    return Prereq.shared("fixtures/stories260K");
  }

  /** danlu's greedy continuation: {@code generate} with temperature 0. */
  static int[] danluGreedy(LlamaWeights w, int[] prompt, int n) {
    Generator g = new Generator(w, prompt.length + n);
    return g.generate(prompt, n, new Sampler(0, 1, 0));
  }

  @Test
  void f32ExportContinuesExactlyAsDanluGenerate() throws Exception {
    LlamaCpp.dir();
    Path gguf = tmp.resolve("s260k-f32.gguf");
    GgufExport.run(new GgufExport.Options(stories(), null, gguf, ExportType.F32, 0, false));
    LlamaWeights w = HfLlama.load(stories(), DataType.FLOAT);
    int[] fromBos = danluGreedy(w, new int[] {1}, 200);
    int[] prompt;
    try (TextTokenizer tok = TextTokenizer.load(stories().resolve("tokenizer.model"))) {
      prompt = prepend(1, tok.encode("Lily and Ben went to the park"));
    }
    int[] fromPrompt = danluGreedy(w, prompt, 120);
    List<JsonNode> r =
        LlamaCpp.run(
            tmp,
            new LlamaCpp.Run(gguf, null)
                .greedy(new int[] {1}, fromBos.length)
                .greedy(prompt, fromPrompt.length));
    assertArrayEquals(fromBos, LlamaCpp.ints(r.get(0).get(0)), "greedy from BOS");
    assertArrayEquals(fromPrompt, LlamaCpp.ints(r.get(0).get(1)), "greedy from a prompt");
  }

  @Test
  void mergedAdapterExportAndLoraGgufContinueAsDanlusMergedModel() throws Exception {
    LlamaCpp.dir();
    Path adapter = tmp.resolve("adapter");
    randomAdapter(stories(), 20241202).save(adapter);
    Path merged = tmp.resolve("merged");
    Merge.run(new Merge.Options(stories(), adapter, merged, null, 5000L << 20, false));
    LlamaWeights base = HfLlama.load(stories(), DataType.FLOAT);
    LlamaWeights mergedW = HfLlama.load(merged, DataType.FLOAT);
    int[] prompt = {1, 403, 407, 261}; // <s> Once upon a
    int[] danlu = danluGreedy(mergedW, prompt, 100);
    assertFalse(
        Arrays.equals(danlu, danluGreedy(base, prompt, 100)),
        "the adapter must change the continuation, or this test proves nothing");
    Path onTheFly = tmp.resolve("merged-f32.gguf");
    GgufExport.run(new GgufExport.Options(stories(), adapter, onTheFly, ExportType.F32, 0, false));
    Path baseGguf = tmp.resolve("base-f32.gguf");
    GgufExport.run(new GgufExport.Options(stories(), null, baseGguf, ExportType.F32, 0, false));
    Path lora = tmp.resolve("lora-f32.gguf");
    LoraGguf.write(stories(), adapter, lora, GgmlType.F32, false);
    // the same merged model split into files of <= 400 kB (gguf-split layout) loads from the first
    Path split = tmp.resolve("split.gguf");
    GgufExport.Result sr =
        GgufExport.run(
            new GgufExport.Options(stories(), adapter, split, ExportType.F32, 400_000, false));
    assertTrue(sr.files().size() > 2, sr.files().toString());
    List<JsonNode> r =
        LlamaCpp.run(
            tmp,
            new LlamaCpp.Run(onTheFly, null).greedy(prompt, danlu.length),
            new LlamaCpp.Run(baseGguf, lora).greedy(prompt, danlu.length),
            new LlamaCpp.Run(sr.files().get(0), null).greedy(prompt, danlu.length));
    assertArrayEquals(
        danlu, LlamaCpp.ints(r.get(0).get(0)), "export --adapter (merged on the fly)");
    assertArrayEquals(danlu, LlamaCpp.ints(r.get(1).get(0)), "base + --lora-gguf in llama.cpp");
    assertArrayEquals(danlu, LlamaCpp.ints(r.get(2).get(0)), "split export");
  }

  /**
   * Per-token log-probabilities of the held-out text: llama.cpp on the f32 export against danlu's
   * forward (both float32 with different summation orders and kernels: 2e-3 on a log-probability is
   * ~50x the differences seen, and far below what a wrong weight would do), and the perplexity of
   * every type against danlu's f32 figure.
   */
  @Test
  void perplexityOfEachExportAgainstDanlusForward() throws Exception {
    LlamaCpp.dir();
    int[] ids;
    try (TextTokenizer tok = TextTokenizer.load(stories().resolve("tokenizer.model"))) {
      ids = prepend(1, tok.encode(TEXT));
    }
    LlamaWeights w = HfLlama.load(stories(), DataType.FLOAT);
    double[] danlu = danluLogProbs(w, ids);
    List<ExportType> types = List.of(ExportType.values());
    LlamaCpp.Run[] runs = new LlamaCpp.Run[types.size()];
    for (int i = 0; i < types.size(); i++) {
      Path f = tmp.resolve("s260k-" + types.get(i).cliName() + ".gguf");
      GgufExport.run(new GgufExport.Options(stories(), null, f, types.get(i), 0, false));
      runs[i] = new LlamaCpp.Run(f, null).probs(ids);
    }
    List<JsonNode> r = LlamaCpp.run(tmp, runs);
    double pplDanlu = ppl(danlu);
    StringBuilder report = new StringBuilder(String.format("danlu f32 %.4f", pplDanlu));
    Map<ExportType, Double> gap = new LinkedHashMap<>();
    for (int i = 0; i < types.size(); i++) {
      double[] lp = llamaLogProbs(r.get(i).get(0), ids);
      double p = ppl(lp);
      gap.put(types.get(i), p / pplDanlu - 1);
      report.append(
          String.format(
              "; %s %.4f (%+.3f%%)", types.get(i).cliName(), p, 100 * (p / pplDanlu - 1)));
      if (types.get(i) == ExportType.F32) {
        double maxDiff = 0;
        for (int t = 0; t < lp.length; t++) {
          assertEquals(danlu[t], lp[t], 2e-4, "f32 log-probability of token " + (t + 1));
          maxDiff = Math.max(maxDiff, Math.abs(danlu[t] - lp[t]));
        }
        report.append(String.format(" [f32 max |d log p| %.1e]", maxDiff));
      }
    }
    System.out.println("GgufRuntimeTest perplexity on " + (ids.length - 1) + " tokens: " + report);
    assertTrue(Math.abs(gap.get(ExportType.F32)) < 1e-4, "f32 " + gap);
    assertTrue(Math.abs(gap.get(ExportType.F16)) < 5e-3, "f16 within 0.5%: " + gap);
    // llama.cpp's published degradation for 7B (tools/quantize/README): q8_0 ~0.01%, q6_k ~0.1%;
    // this 64-wide model falls back to q8_0/q5_x/f16 for every k-quant, so only the order of
    // magnitude is asserted here; QuantizeOracleTest proves the bytes equal llama-quantize's
    assertTrue(Math.abs(gap.get(ExportType.Q8_0)) < 5e-3, "q8_0: " + gap);
    assertTrue(Math.abs(gap.get(ExportType.Q6_K)) < 5e-3, "q6_k: " + gap);
    for (ExportType t : List.of(ExportType.Q5_K_M, ExportType.Q4_K_M, ExportType.Q4_0)) {
      assertTrue(Math.abs(gap.get(t)) < 0.15, t + ": " + gap);
    }
  }

  /**
   * {@code eval ppl --ctx}'s figure (ChunkPerplexity: llama-perplexity's chunks, BOS at each chunk
   * start, the second half scored) against the same procedure run on llama.cpp's probabilities of
   * each export, chunk by chunk in fresh contexts.
   */
  @Test
  void evalPplCtxAgreesWithLlamaCppOnTheSameChunks() throws Exception {
    LlamaCpp.dir();
    int ctx = 32;
    int[] tokens;
    try (TextTokenizer tok = TextTokenizer.load(stories().resolve("tokenizer.model"))) {
      tokens = dev.danlu.train.eval.ChunkPerplexity.tokens(1, tok.encode(TEXT + " " + TEXT));
    }
    LlamaWeights w = HfLlama.load(stories(), DataType.FLOAT);
    var danlu = dev.danlu.train.eval.ChunkPerplexity.run(w, null, tokens, ctx, 1);
    int chunks = dev.danlu.train.eval.ChunkPerplexity.chunkCount(tokens.length, ctx);
    List<ExportType> types = List.of(ExportType.F32, ExportType.F16, ExportType.Q8_0);
    LlamaCpp.Run[] runs = new LlamaCpp.Run[types.size()];
    for (int i = 0; i < types.size(); i++) {
      Path f = tmp.resolve("ppl-" + types.get(i).cliName() + ".gguf");
      GgufExport.run(new GgufExport.Options(stories(), null, f, types.get(i), 0, false));
      runs[i] = new LlamaCpp.Run(f, null);
      for (int c = 0; c < chunks; c++) {
        int[] ids = Arrays.copyOfRange(tokens, c * ctx, (c + 1) * ctx);
        ids[0] = 1;
        runs[i].probs(ids);
      }
    }
    List<JsonNode> r = LlamaCpp.run(tmp, runs);
    StringBuilder report =
        new StringBuilder(String.format("danlu eval ppl --ctx %d: %.4f", ctx, danlu.perplexity()));
    for (int i = 0; i < types.size(); i++) {
      double nll = 0;
      long count = 0;
      for (int c = 0; c < chunks; c++) {
        JsonNode probs = r.get(i).get(c);
        for (int j = ctx / 2; j < ctx - 1; j++) {
          nll -= Math.log(probs.get(j).get(tokens[c * ctx + j + 1]).asDouble());
          count++;
        }
      }
      assertEquals(danlu.tokens(), count, "the same scored tokens");
      double ppl = Math.exp(nll / count);
      double gap = ppl / danlu.perplexity() - 1;
      report.append(
          String.format("; llama.cpp %s %.4f (%+.3f%%)", types.get(i).cliName(), ppl, 100 * gap));
      // f32: the same arithmetic up to float32 summation order (log-probs agree to 2e-4 above)
      assertTrue(Math.abs(gap) < (types.get(i) == ExportType.F32 ? 1e-4 : 5e-3), report.toString());
    }
    System.out.println("GgufRuntimeTest " + report);
  }

  static double[] danluLogProbs(LlamaWeights w, int[] ids) {
    Generator g = new Generator(w, ids.length);
    double[] lp = new double[ids.length - 1];
    for (int t = 0; t + 1 < ids.length; t++) {
      float[] logits = g.step(ids[t], t);
      double max = Double.NEGATIVE_INFINITY;
      for (float v : logits) {
        max = Math.max(max, v);
      }
      double sum = 0;
      for (float v : logits) {
        sum += Math.exp(v - max);
      }
      lp[t] = logits[ids[t + 1]] - max - Math.log(sum);
    }
    return lp;
  }

  static double[] llamaLogProbs(JsonNode probs, int[] ids) {
    double[] lp = new double[ids.length - 1];
    for (int t = 0; t + 1 < ids.length; t++) {
      lp[t] = Math.log(probs.get(t).get(ids[t + 1]).asDouble());
    }
    return lp;
  }

  static double ppl(double[] lp) {
    return Math.exp(-Arrays.stream(lp).sum() / lp.length);
  }

  static int[] prepend(int first, int[] rest) {
    int[] r = new int[rest.length + 1];
    r[0] = first;
    System.arraycopy(rest, 0, r, 1, rest.length);
    return r;
  }

  /** r=4 LoRA on all seven projections with random A and B (B nonzero so it changes the model). */
  static PeftAdapter randomAdapter(Path model, long seed) throws Exception {
    var cfg = dev.danlu.train.model.LlamaConfig.load(model);
    AdapterConfig ac =
        new AdapterConfig(
            4,
            8,
            0.0,
            AdapterConfig.LLAMA_TARGETS,
            List.of(),
            "none",
            false,
            true,
            model.toString(),
            "LORA",
            "CAUSAL_LM",
            true);
    Map<String, FloatTensor> t = new LinkedHashMap<>();
    SplittableRandom r = new SplittableRandom(seed);
    for (int l = 0; l < cfg.numLayers(); l++) {
      for (String proj : AdapterConfig.LLAMA_TARGETS) {
        String m = PeftAdapter.llamaModule(l, proj);
        int in = proj.equals("down_proj") ? cfg.intermediateSize() : cfg.hiddenSize();
        int out =
            switch (proj) {
              case "k_proj", "v_proj" -> cfg.kvDim();
              case "gate_proj", "up_proj" -> cfg.intermediateSize();
              default -> cfg.hiddenSize();
            };
        t.put(PeftAdapter.loraKey(m, 'A'), FloatTensor.of(rand(r, 4 * in, 0.2), 4, in));
        t.put(PeftAdapter.loraKey(m, 'B'), FloatTensor.of(rand(r, out * 4, 0.1), out, 4));
      }
    }
    return new PeftAdapter(ac, t);
  }

  static float[] rand(SplittableRandom r, int n, double scale) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) ((r.nextDouble() - 0.5) * 2 * scale);
    }
    return v;
  }
}
