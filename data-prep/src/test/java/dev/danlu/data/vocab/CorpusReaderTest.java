package dev.danlu.data.vocab;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reading a file in byte ranges: every line once, with the same sampling key, whatever the split.
 */
class CorpusReaderTest {
  @TempDir Path tmp;

  private static List<String> read(CorpusReader r, Path f, long start, long end)
      throws IOException {
    List<String> out = new ArrayList<>();
    r.read(f, "k", start, end, (line, key) -> out.add(line + "#" + key));
    return out;
  }

  @Test
  void rangesPartitionTheLines() throws IOException {
    CorpusReader r = new CorpusReader(BpeSpec.defaults(100).withNormalization("identity"));
    for (String text :
        List.of(
            "床前明月光\n疑是地上霜\n\n举头望明月\nlow\n\n\nhead\n低头思故乡",
            "a\nbb\nccc\n",
            "\n\nonly\n",
            "no newline at all")) {
      Path f = tmp.resolve("f.txt");
      Files.writeString(f, text, StandardCharsets.UTF_8);
      long size = Files.size(f);
      List<String> whole = read(r, f, 0, Long.MAX_VALUE);
      assertEquals(text.lines().filter(l -> !l.isEmpty()).count(), whole.size(), text);
      for (long split = 1; split <= size + 1; split++) {
        List<String> parts = new ArrayList<>();
        for (long s = 0; s < size; s += split) {
          parts.addAll(read(r, f, s, s + split >= size ? Long.MAX_VALUE : s + split));
        }
        assertEquals(whole, parts, "split " + split + " of " + text);
      }
    }
  }

  @Test
  void nonUtf8InALaterRangeNamesTheAbsoluteOffset() throws IOException {
    CorpusReader r = new CorpusReader(BpeSpec.defaults(100).withNormalization("identity"));
    Path f = tmp.resolve("bad.txt");
    byte[] good = "白日依山尽\n黄河入海流\n".getBytes(StandardCharsets.UTF_8);
    byte[] b = new byte[good.length + 3];
    System.arraycopy(good, 0, b, 0, good.length);
    b[good.length] = 'x';
    b[good.length + 1] = (byte) 0xff;
    b[good.length + 2] = '\n';
    Files.write(f, b);
    IOException e = assertThrows(IOException.class, () -> read(r, f, 20, Long.MAX_VALUE));
    assertTrue(e.getMessage().contains("offset " + (good.length + 1)), e.getMessage());
  }
}
