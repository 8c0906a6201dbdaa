package dev.danlu.data.chunk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

class SourceScanTest {
  private static SourceScan.Result scan(byte[] b, long split, int max) throws IOException {
    return SourceScan.scan(new ByteArrayInputStream(b), split, max);
  }

  @Test
  void hashesCountsLinesAndPlansSplitsAtLineStarts() throws Exception {
    byte[] data = "aa\n\nbb\r\n\r\ncc\ndd".getBytes(StandardCharsets.UTF_8);
    SourceScan.Result r = scan(data, 4, 100);
    assertEquals(
        HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data)), r.sha256());
    assertEquals(data.length, r.size());
    assertEquals(4, r.lines(), "aa, bb, cc, dd; the empty and lone-CR lines do not count");
    // Boundaries at 4, 8, 12 → next line starts 4 ("bb", 1 line before), 8 ("\r\n", 2 before),
    // 13 ("dd", 3 before).
    assertEquals(
        java.util.List.of(
            new SourceScan.SplitPoint(0, 0),
            new SourceScan.SplitPoint(4, 1),
            new SourceScan.SplitPoint(8, 2),
            new SourceScan.SplitPoint(13, 3)),
        r.splits());
    assertFalse(r.binary());
    assertEquals(-1, r.firstInvalidUtf8Offset());
  }

  @Test
  void findsNulBytesAndInvalidUtf8WithOffsets() throws IOException {
    byte[] bad = {'o', 'k', '\n', 'a', (byte) 0xff, 'b', (byte) 0xe4, (byte) 0xb8, '\n'};
    SourceScan.Result r = scan(bad, Long.MAX_VALUE, 100);
    assertEquals(4, r.firstInvalidUtf8Offset());
    assertEquals(2, r.utf8Replacements());
    Utf8Decoder d = new Utf8Decoder();
    assertEquals(
        "a\uFFFDb\uFFFD",
        d.decode(new byte[] {'a', (byte) 0xff, 'b', (byte) 0xe4, (byte) 0xb8}, 5));
    assertEquals(
        2, d.replacements(), "the tokenizing pass replaces as many sequences as the scan counts");

    SourceScan.Result bin = scan(new byte[] {'h', 'i', '\n', 'x', 0, 'y'}, Long.MAX_VALUE, 100);
    assertTrue(bin.binary());
    assertEquals(4, bin.nulOffset());
    assertNull(bin.sha256());
  }

  @Test
  void oversizedLinesAreReportedAndNotCounted() throws IOException {
    SourceScan.Result r = scan("a\n1234567\nb".getBytes(StandardCharsets.UTF_8), Long.MAX_VALUE, 5);
    assertEquals(2, r.lines());
    assertEquals(1, r.oversizedLines());
  }

  @Test
  void emptyInput() throws IOException {
    SourceScan.Result r = scan(new byte[0], 10, 100);
    assertEquals(0, r.lines());
    assertEquals(1, r.splits().size());
  }
}
