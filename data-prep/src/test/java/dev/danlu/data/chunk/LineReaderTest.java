package dev.danlu.data.chunk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class LineReaderTest {
  private static List<String> lines(String text, int max) throws IOException {
    LineReader r =
        new LineReader(new ByteArrayInputStream(text.getBytes(StandardCharsets.UTF_8)), 0, max);
    List<String> out = new ArrayList<>();
    while (r.next()) {
      out.add(
          r.oversized()
              ? "<oversized " + r.rawLength() + ">"
              : (r.counts() ? "" : "-")
                  + new String(r.bytes(), 0, r.length(), StandardCharsets.UTF_8));
    }
    return out;
  }

  @Test
  void splitsOnNewlineStripsOneCrAndKeepsAnUnterminatedLastLine() throws IOException {
    assertEquals(List.of("a", "b\r", "-", "-", "c"), lines("a\r\nb\r\r\n\r\n\nc", 100));
    assertEquals(List.of("x"), lines("x\n", 100));
    assertEquals(List.of(), lines("", 100));
  }

  @Test
  void oversizedLinesAreCountedNotStored() throws IOException {
    assertEquals(List.of("ab", "<oversized 5>", "cd"), lines("ab\n12345\ncd\n", 4));
  }

  @Test
  void a100MbLineStreamsInConstantMemory() throws IOException {
    long size = 100L << 20;
    InputStream huge = new RepeatedByteStream('x', size);
    LineReader r = new LineReader(huge, 0, LineRules.DEFAULT_MAX_LINE_BYTES);
    assertTrue(r.next());
    assertTrue(r.oversized());
    assertEquals(size, r.rawLength());
    assertTrue(r.bytes().length <= 2 * LineRules.DEFAULT_MAX_LINE_BYTES, "line buffer capped");
    assertFalse(r.next());
  }

  /** {@code n} copies of one byte, then a newline; nothing is held in memory. */
  static final class RepeatedByteStream extends InputStream {
    private final byte value;
    private long left;
    private boolean newlineSent;

    RepeatedByteStream(char value, long n) {
      this.value = (byte) value;
      this.left = n;
    }

    @Override
    public int read() {
      byte[] one = new byte[1];
      return read(one, 0, 1) < 0 ? -1 : one[0];
    }

    @Override
    public int read(byte[] b, int off, int len) {
      if (len == 0) {
        return 0;
      }
      if (left > 0) {
        int n = (int) Math.min(len, left);
        java.util.Arrays.fill(b, off, off + n, value);
        left -= n;
        return n;
      }
      if (!newlineSent) {
        newlineSent = true;
        b[off] = '\n';
        return 1;
      }
      return -1;
    }
  }
}
