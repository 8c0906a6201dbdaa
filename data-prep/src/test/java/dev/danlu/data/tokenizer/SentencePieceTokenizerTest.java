package dev.danlu.data.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Basic SentencePiece loading, metadata and ids vs spm_encode on the stories260K model. */
class SentencePieceTokenizerTest {
  @TempDir Path tmp;

  static Path shared(String rel) {
    return dev.danlu.testkit.Prereq.shared(rel);
  }

  @Test
  void stories260kMetadataAndIdsMatchSpmEncode() throws IOException {
    SpmReference.assumeInstalled();
    Path model = shared("fixtures/stories260K/tokenizer.model");
    try (TextTokenizer tok = TextTokenizer.load(model)) {
      assertEquals(512, tok.vocabSize());
      assertEquals(1, tok.bosId());
      assertEquals(2, tok.eosId());
      assertEquals(-1, tok.padId());
      assertEquals("<unk>", tok.piece(0));
      assertEquals("<0x0A>", tok.piece(3 + 10));
      assertEquals(64, tok.sha256().length());
      List<String> lines =
          List.of("Once upon a time, there was a little girl.", "", "  two  spaces", "日本 😀");
      List<int[]> expected = SpmReference.encode(model, lines, tmp);
      for (int i = 0; i < lines.size(); i++) {
        assertArrayEquals(expected.get(i), tok.encode(lines.get(i)), lines.get(i));
      }
    }
  }

  @Test
  void missingOrInvalidFilesAreClearErrors() throws IOException {
    Path missing = tmp.resolve("nope.model");
    NoSuchFileException e =
        assertThrows(NoSuchFileException.class, () -> TextTokenizer.load(missing));
    assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());
    Path garbage = Files.write(tmp.resolve("garbage.model"), new byte[] {(byte) 0xff, 1, 2, 3});
    IOException g = assertThrows(IOException.class, () -> TextTokenizer.load(garbage));
    assertTrue(g.getMessage().contains(garbage.toString()), g.getMessage());
    Path empty = Files.write(tmp.resolve("empty.model"), new byte[0]);
    IOException em = assertThrows(IOException.class, () -> TextTokenizer.load(empty));
    assertTrue(em.getMessage().contains("empty"), em.getMessage());
    byte[] real = Files.readAllBytes(shared("fixtures/stories260K/tokenizer.model"));
    Path truncated =
        Files.write(tmp.resolve("truncated.model"), Arrays.copyOf(real, real.length / 2));
    IOException t = assertThrows(IOException.class, () -> TextTokenizer.load(truncated));
    assertTrue(t.getMessage().contains(truncated.toString()), t.getMessage());
    Path badJson = Files.writeString(tmp.resolve("tokenizer.json"), "{\"model\": {}}");
    IOException j = assertThrows(IOException.class, () -> TextTokenizer.load(badJson));
    assertTrue(j.getMessage().contains(badJson.toString()), j.getMessage());
  }

  @Test
  void outOfRangeIdsAreRejectedBeforeNativeCode() throws IOException {
    Path model = shared("fixtures/stories260K/tokenizer.model");
    try (TextTokenizer tok = TextTokenizer.load(model)) {
      assertThrows(IllegalArgumentException.class, () -> tok.piece(512));
      assertThrows(IllegalArgumentException.class, () -> tok.decode(new int[] {5, -1}));
      tok.close();
      assertThrows(IllegalStateException.class, () -> tok.encode("x"));
    }
  }
}
