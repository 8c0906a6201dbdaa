package dev.danlu.launch.demo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DemoCorpusTest {
  @TempDir Path tmp;

  private Path english() throws IOException {
    Path en = tmp.resolve("english");
    Files.createDirectories(en);
    Files.writeString(en.resolve("1990_a.txt"), "a".repeat(100));
    Files.writeString(en.resolve("1991_b.txt"), "b".repeat(100));
    Files.writeString(en.resolve("1992_c.txt"), "c".repeat(100));
    Files.writeString(en.resolve("moby-dick.txt"), "m".repeat(1000));
    return en;
  }

  private static List<String> names(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void takesTheNewestSpeechesUntilTheTargetAndNothingElse() throws IOException {
    Path dest = tmp.resolve("corpus");
    DemoCorpus.Subset s = DemoCorpus.subset(english(), dest, 150);
    assertEquals(2, s.files());
    assertEquals(200, s.bytes());
    assertEquals(List.of("1991_b.txt", "1992_c.txt"), names(dest));
    assertEquals("c".repeat(100), Files.readString(dest.resolve("1992_c.txt")));
  }

  @Test
  void reRunKeepsUnchangedFilesAndDropsStrayOnes() throws IOException {
    Path en = english();
    Path dest = tmp.resolve("corpus");
    DemoCorpus.subset(en, dest, 150);
    FileTime old = FileTime.fromMillis(1_000_000_000_000L);
    Files.setLastModifiedTime(dest.resolve("1992_c.txt"), old);
    Files.writeString(dest.resolve("1991_b.txt"), "edited"); // must be restored
    Files.writeString(dest.resolve("stray.txt"), "not part of the subset");

    DemoCorpus.subset(en, dest, 150);
    assertEquals(List.of("1991_b.txt", "1992_c.txt"), names(dest));
    // untouched, so prep's incremental scan sees no change
    assertEquals(old, Files.getLastModifiedTime(dest.resolve("1992_c.txt")));
    assertEquals("b".repeat(100), Files.readString(dest.resolve("1991_b.txt")));
  }

  @Test
  void anEmptySpeechDirectoryIsAnErrorNamingIt() throws IOException {
    Path en = tmp.resolve("empty");
    Files.createDirectories(en);
    IOException e =
        assertThrows(IOException.class, () -> DemoCorpus.subset(en, tmp.resolve("c"), 10));
    assertTrue(e.getMessage().contains(en.toString()), e.getMessage());
  }

  @Test
  void presentNeedsBothTheSpeechesAndTheTokenizer() throws IOException {
    Path cache = tmp.resolve("cache");
    assertFalse(DemoCorpus.present(cache));
    Files.createDirectories(cache.resolve("corpora/english"));
    Files.writeString(cache.resolve("corpora/english/.done"), "");
    assertFalse(DemoCorpus.present(cache));
    Files.createDirectories(cache.resolve("corpora/tokenizers"));
    Files.writeString(cache.resolve("corpora/" + DemoCorpus.TOKENIZER), "x");
    assertTrue(DemoCorpus.present(cache));
  }
}
