package dev.danlu.data.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Ids equal {@code spm_encode --output_format=id} (the SentencePiece C++ library, Debian package)
 * line for line, on real Chinese text with the 55296-piece Chinese-LLaMA-2 model and real English
 * with the 32000-piece LLaMA-2 model, plus adversarial lines; both the Java BPE path and the JNI
 * path are checked.
 */
class SpmEquivalenceTest {
  @TempDir static Path tmp;

  @BeforeAll
  static void reference() {
    SpmReference.assumeInstalled();
  }

  @Test
  void chineseLlama2OnRealChineseText() throws IOException {
    Path model = TestTexts.shared("fixtures/tokenizers/chinese-llama2-tokenizer.model");
    List<String> lines =
        new ArrayList<>(TestTexts.sample(TestTexts.cache("corpora/chinese"), 12, 300));
    lines.addAll(TestTexts.alpacaLines());
    assertTrue(lines.size() > 3000, "sample too small: " + lines.size());
    lines.addAll(TestTexts.nasty(lines.get(0)));
    try (SentencePieceTokenizer tok = SentencePieceTokenizer.load(model)) {
      assertEquals(55296, tok.vocabSize());
      assertEquals(32000, tok.padId());
      assertEquals("<pad>", tok.piece(32000));
      assertTrue(tok.encodesInJava());
      assertSameIds(model, tok, lines);
    }
  }

  @Test
  void llama2OnRealEnglishText() throws IOException {
    Path model = TestTexts.cache("corpora/tokenizers/llama2-tokenizer.model");
    // State-of-the-Union addresses (one long paragraph per line) and Moby-Dick (short lines).
    List<String> lines =
        new ArrayList<>(TestTexts.sample(TestTexts.cache("corpora/english"), 20, 50));
    lines.addAll(TestTexts.lines(TestTexts.cache("corpora/english/moby-dick.txt"), 1000, 2500));
    assertTrue(TestTexts.utf8Bytes(lines) > 500_000, "sample too small: " + lines.size());
    // The 32000 model on Chinese too: most Chinese characters fall back to UTF-8 byte pieces.
    lines.addAll(TestTexts.sample(TestTexts.cache("corpora/chinese"), 3, 100));
    lines.addAll(TestTexts.nasty(lines.get(0)));
    try (SentencePieceTokenizer tok = SentencePieceTokenizer.load(model)) {
      assertEquals(32000, tok.vocabSize());
      assertEquals(-1, tok.padId());
      assertEquals(1, tok.bosId());
      assertEquals(2, tok.eosId());
      assertSameIds(model, tok, lines);
    }
  }

  @Test
  void stories260kRoundTripsThroughSpmDecode() throws IOException {
    Path model = TestTexts.shared("fixtures/stories260K/tokenizer.model");
    List<String> lines =
        new ArrayList<>(TestTexts.sample(TestTexts.cache("corpora/english"), 4, 50));
    lines.addAll(
        List.of(
            "Once upon a time, there was a little girl named Lily.",
            "She loved to play outside in the park with her friends.",
            "Tom said, \"Look at the big red ball!\"",
            "日本語 😀 mixed"));
    try (SentencePieceTokenizer tok = SentencePieceTokenizer.load(model)) {
      assertEquals(512, tok.vocabSize());
      List<int[]> ids = assertSameIds(model, tok, lines);
      List<String> reference = SpmReference.decode(model, ids, tmp);
      for (int i = 0; i < lines.size(); i++) {
        String decoded = tok.decode(ids.get(i));
        assertEquals(reference.get(i), decoded, "decode of line " + i);
        // Byte fallback makes any text reproducible, except that spm_decode drops the dummy
        // prefix space only, so a leading-space-free line comes back unchanged.
        assertEquals(lines.get(i), decoded, "round trip of line " + i);
      }
    }
  }

  @Test
  void concurrentEncodesMatchSequentialOnes() throws Exception {
    Path model = TestTexts.shared("fixtures/tokenizers/chinese-llama2-tokenizer.model");
    List<String> lines = TestTexts.sample(TestTexts.cache("corpora/chinese"), 4, 200);
    try (SentencePieceTokenizer tok = SentencePieceTokenizer.load(model)) {
      List<int[]> expected = lines.stream().map(tok::encode).toList();
      ExecutorService pool = Executors.newFixedThreadPool(4);
      try {
        List<Future<Boolean>> results = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
          boolean useNative = t % 2 == 1;
          results.add(
              pool.submit(
                  () -> {
                    for (int i = 0; i < lines.size(); i++) {
                      int[] ids =
                          useNative ? tok.encodeNative(lines.get(i)) : tok.encode(lines.get(i));
                      if (!Arrays.equals(expected.get(i), ids)) {
                        return false;
                      }
                    }
                    return true;
                  }));
        }
        for (Future<Boolean> r : results) {
          assertTrue(r.get(), "a concurrent encode differed from the sequential one");
        }
      } finally {
        pool.shutdownNow();
      }
    }
  }

  @Test
  void randomIdSequencesDecodeLikeSpmDecode() throws IOException {
    Path model = TestTexts.cache("corpora/tokenizers/llama2-tokenizer.model");
    try (SentencePieceTokenizer tok = SentencePieceTokenizer.load(model)) {
      int newline = tok.model().id("<0x0A>"); // spm_decode writes one line per sequence
      java.util.Random random = new java.util.Random(42);
      List<int[]> seqs = new ArrayList<>();
      for (int s = 0; s < 2000; s++) {
        int[] ids = new int[1 + random.nextInt(12)];
        for (int i = 0; i < ids.length; i++) {
          // Half the ids among the specials and byte pieces, where decoding has its rules.
          do {
            ids[i] = random.nextBoolean() ? random.nextInt(300) : random.nextInt(32000);
          } while (ids[i] == newline);
        }
        seqs.add(ids);
      }
      List<String> expected = SpmReference.decode(model, seqs, tmp);
      for (int s = 0; s < seqs.size(); s++) {
        assertEquals(expected.get(s), tok.decode(seqs.get(s)), Arrays.toString(seqs.get(s)));
      }
    }
  }

  @Test
  void wordCachesAreNotSharedBetweenModels() throws IOException {
    Path small = TestTexts.shared("fixtures/stories260K/tokenizer.model");
    Path large = TestTexts.cache("corpora/tokenizers/llama2-tokenizer.model");
    try (SentencePieceTokenizer a = SentencePieceTokenizer.load(small);
        SentencePieceTokenizer b = SentencePieceTokenizer.load(large)) {
      for (String text : List.of("the cat sat", "the cat sat on the mat", "the cat")) {
        assertArrayEquals(a.encodeNative(text), a.encode(text), text);
        assertArrayEquals(b.encodeNative(text), b.encode(text), text);
      }
    }
  }

  /** Asserts Java and JNI ids equal spm_encode's for every line; returns spm's ids. */
  private static List<int[]> assertSameIds(
      Path model, SentencePieceTokenizer tok, List<String> lines) {
    List<int[]> expected = SpmReference.encode(model, lines, tmp);
    for (int i = 0; i < lines.size(); i++) {
      String line = lines.get(i);
      String label = "line " + i + " '" + abbreviate(line) + "'";
      assertArrayEquals(expected.get(i), tok.encode(line), "java: " + label);
      assertArrayEquals(expected.get(i), tok.encodeNative(line), "jni: " + label);
    }
    return expected;
  }

  private static String abbreviate(String s) {
    return s.length() <= 80 ? s : s.substring(0, 80) + "...(" + s.length() + " chars)";
  }
}
