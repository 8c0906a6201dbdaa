package dev.danlu.train.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.testkit.Prereq;
import dev.danlu.train.model.Generator;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.LlamaWeights;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * llama.cpp's perplexity procedure on the real stories260K model against eval_reference.py (the
 * same procedure in float64 torch, tokenized by python3-sentencepiece): PPL, mean NLL and standard
 * error within 1e-4 relative, every running PPL too; and the Generator's block feed that the prefix
 * cache rests on equals token-by-token decoding.
 */
class ChunkPerplexityTest {
  @TempDir Path tmp;

  static final String TEXT =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the"
          + " park with her friends. One day, she saw a big red ball under a tree.\n"
          + "Tom was a happy dog. He liked to run and jump. His mom said, \"Be careful, Tom!\""
          + " But Tom did not listen and ran to the river.\n";

  @Test
  void matchesTheReferenceOnStories260k() throws Exception {
    Prereq.python("numpy", "torch", "sentencepiece", "pandas");
    Path model = Prereq.shared("fixtures/stories260K");
    Path text = tmp.resolve("text.txt");
    Files.writeString(text, TEXT.repeat(4), StandardCharsets.UTF_8);
    int ctx = 64;
    JsonNode ref =
        EvalFixtures.reference(
            Path.of(EvalFixtures.SCRIPT),
            List.of(
                "ppl",
                "--model",
                model.toString(),
                "--tokenizer",
                model.resolve("tokenizer.model").toString(),
                "--text",
                text.toString(),
                "--ctx",
                Integer.toString(ctx)));
    LlamaWeights w = HfLlama.load(model, DataType.FLOAT);
    try (TextTokenizer tok = TextTokenizer.load(model.resolve("tokenizer.model"))) {
      int[] tokens =
          ChunkPerplexity.tokens(
              tok.bosId(), tok.encode(Files.readString(text, StandardCharsets.UTF_8)));
      ChunkPerplexity.Result r = ChunkPerplexity.run(w, null, tokens, ctx, tok.bosId());
      assertEquals(ref.get("tokens").asLong(), r.tokens());
      assertTrue(r.runningPpl().length >= 3, "chunks: " + r.runningPpl().length);
      assertEquals(1, rel(ref.get("perplexity").asDouble(), r.perplexity()), 1e-4);
      assertEquals(1, rel(ref.get("nll").asDouble(), r.nll()), 1e-4);
      assertEquals(1, rel(ref.get("stderr").asDouble(), r.stderr()), 1e-4);
      for (int i = 0; i < r.runningPpl().length; i++) {
        assertEquals(1, rel(ref.get("running").get(i).asDouble(), r.runningPpl()[i]), 1e-4);
      }
      assertTrue(r.finalLine().startsWith("Final estimate: PPL = "), r.finalLine());
      // fewer than 2 ctx tokens: refused as llama-perplexity refuses it
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () ->
                  ChunkPerplexity.run(
                      w, null, java.util.Arrays.copyOf(tokens, 2 * ctx - 1), ctx, 1));
      assertTrue(e.getMessage().contains("at least " + 2 * ctx), e.getMessage());
    }
  }

  /** feed(prefix) + feed(suffix) = feed(all) = step by step, up to float32 rounding. */
  @Test
  void blockFeedEqualsStepByStep() throws Exception {
    Path model = Prereq.shared("fixtures/stories260K");
    LlamaWeights w = HfLlama.load(model, DataType.FLOAT);
    int[] ids = new int[40];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = i == 0 ? 1 : (i * 37) % 500 + 3;
    }
    Generator step = new Generator(w, ids.length);
    float[] a = null;
    for (int i = 0; i < ids.length; i++) {
      a = step.step(ids[i], i);
    }
    Generator g = new Generator(w, ids.length);
    float[] whole = g.feed(ids, 0, ids.length, 0);
    g.feed(ids, 0, 25, 0);
    float[] split = g.feed(ids, 25, ids.length, 25);
    // the prefix stays valid for another suffix after one was fed
    float[] again = g.feed(ids, 25, ids.length, 25);
    for (int v = 0; v < a.length; v++) {
      assertEquals(a[v], whole[v], 1e-4 * Math.max(1, Math.abs(a[v])), "vocab " + v);
      assertEquals(a[v], split[v], 1e-4 * Math.max(1, Math.abs(a[v])), "vocab " + v);
      assertEquals(split[v], again[v], 0.0, "vocab " + v);
    }
  }

  private static double rel(double want, double got) {
    return got / want;
  }
}
