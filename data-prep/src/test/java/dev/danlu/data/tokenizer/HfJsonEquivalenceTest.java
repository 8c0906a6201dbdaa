package dev.danlu.data.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Hugging Face {@code tokenizer.json} through DJL against {@code spm_encode}. The json is made from
 * the SentencePiece model the way transformers' LlamaConverter makes it ({@link
 * HfJsonFromSentencePiece}), so both sides describe the same tokenizer.
 */
class HfJsonEquivalenceTest {
  @TempDir static Path tmp;

  private static Path llama2Json;

  /** The LLaMA-2 json, converted once per class. */
  private static synchronized Path llama2Json(Path model) throws IOException {
    if (llama2Json == null) {
      llama2Json = HfJsonFromSentencePiece.write(model, tmp.resolve("llama2-tokenizer.json"));
    }
    return llama2Json;
  }

  @BeforeAll
  static void reference() {
    SpmReference.assumeInstalled();
  }

  @Test
  void llama2JsonMatchesSpmExceptLiteralSpecialTokens() throws IOException {
    Path model = TestTexts.cache("corpora/tokenizers/llama2-tokenizer.model");
    Path json = llama2Json(model);
    List<String> lines =
        new ArrayList<>(TestTexts.sample(TestTexts.cache("corpora/english"), 10, 50));
    lines.addAll(TestTexts.lines(TestTexts.cache("corpora/english/moby-dick.txt"), 1000, 1000));
    lines.addAll(TestTexts.sample(TestTexts.cache("corpora/chinese"), 6, 100));
    lines.addAll(TestTexts.nasty(lines.get(0), 1 << 16)); // HF's BPE is slow on 1 MB lines
    List<int[]> expected = SpmReference.encode(model, lines, tmp);
    List<String> differing = new ArrayList<>();
    try (TextTokenizer tok = TextTokenizer.load(json)) {
      assertInstanceOf(HfJsonTokenizer.class, tok);
      assertEquals(32000, tok.vocabSize());
      assertEquals(1, tok.bosId());
      assertEquals(2, tok.eosId());
      assertEquals(-1, tok.padId());
      assertEquals("▁the", tok.piece(278));
      for (int i = 0; i < lines.size(); i++) {
        if (!Arrays.equals(expected.get(i), tok.encode(lines.get(i)))) {
          differing.add(lines.get(i));
        }
      }
      // HF matches added tokens (<unk> <s> </s>) in the raw text; SentencePiece never does.
      assertEquals(
          List.of("<s> </s> <unk> <pad> <0x0A> special-looking text"), differing, "differing");
      // ...and normalizes each piece of text between them on its own ("▁" prepended again).
      assertArrayEquals(new int[] {1, 259, 2}, tok.encode("<s> </s>"));
      assertArrayEquals(tok.encode("a?b"), tok.encode("a\uD800b"));
      for (String text : List.of("Hello world", "日本語 😀 mixed", "  two  spaces")) {
        assertEquals(text, tok.decode(tok.encode(text)));
      }
    }
  }

  @Test
  void chineseLlama2JsonDiffersOnEqualScoredMerges() throws IOException {
    Path model = TestTexts.shared("fixtures/tokenizers/chinese-llama2-tokenizer.model");
    Path json = HfJsonFromSentencePiece.write(model, tmp.resolve("chinese-tokenizer.json"));
    List<String> lines = TestTexts.sample(TestTexts.cache("corpora/chinese"), 6, 200);
    List<int[]> expected = SpmReference.encode(model, lines, tmp);
    int differing = 0;
    try (TextTokenizer hf = TextTokenizer.load(json);
        TextTokenizer spm = TextTokenizer.load(model)) {
      assertEquals(55296, hf.vocabSize());
      assertEquals(32000, hf.padId());
      for (int i = 0; i < lines.size(); i++) {
        int[] ids = hf.encode(lines.get(i));
        if (!Arrays.equals(expected.get(i), ids)) {
          differing++;
          // Another segmentation of the same text, not garbage: the 23296 pieces Chinese-LLaMA-2
          // appended all have score 0, SentencePiece merges equal scores leftmost first, HF's
          // BPE by merge rank (piece order), and no rank order can express "leftmost".
          assertEquals(spm.decode(expected.get(i)), spm.decode(ids), lines.get(i));
        }
      }
    }
    assertTrue(differing > 0, "expected the known HF/SentencePiece tie-break difference");
  }

  @Test
  void concurrentEncodesMatchSequentialOnes() throws Exception {
    Path model = TestTexts.cache("corpora/tokenizers/llama2-tokenizer.model");
    Path json = llama2Json(model);
    List<String> lines = TestTexts.lines(TestTexts.cache("corpora/english/moby-dick.txt"), 0, 800);
    try (TextTokenizer tok = TextTokenizer.load(json)) {
      List<int[]> expected = lines.stream().map(tok::encode).toList();
      java.util.concurrent.ExecutorService pool =
          java.util.concurrent.Executors.newFixedThreadPool(4);
      try {
        List<java.util.concurrent.Future<Boolean>> results = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
          results.add(
              pool.submit(
                  () -> {
                    for (int i = 0; i < lines.size(); i++) {
                      if (!Arrays.equals(expected.get(i), tok.encode(lines.get(i)))) {
                        return false;
                      }
                    }
                    return true;
                  }));
        }
        for (java.util.concurrent.Future<Boolean> r : results) {
          assertTrue(r.get(), "a concurrent encode differed from the sequential one");
        }
      } finally {
        pool.shutdownNow();
      }
    }
  }
}
