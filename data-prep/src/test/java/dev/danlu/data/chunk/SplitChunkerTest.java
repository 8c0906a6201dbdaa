package dev.danlu.data.chunk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Split processing reproduces the whole-file group semantics for any split size. */
class SplitChunkerTest {
  /** Random text with empty lines, CRLF lines, a lone CR line, multi-byte characters. */
  static String randomText(long seed, int lines) {
    Random r = new Random(seed);
    String[] words = {"the", "whale", "白鲸", "船长", "sea", "ok", "ÿ", "🐳"};
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < lines; i++) {
      int kind = r.nextInt(20);
      if (kind == 0) {
        sb.append('\n');
      } else if (kind == 1) {
        sb.append("\r\n");
      } else {
        int n = 1 + r.nextInt(12);
        for (int w = 0; w < n; w++) {
          sb.append(w == 0 ? "" : " ").append(words[r.nextInt(words.length)]);
        }
        sb.append(kind == 2 ? "\r\n" : "\n");
      }
    }
    return sb.toString();
  }

  static List<int[]> runSplits(byte[] data, ChunkingMode mode, int blockSize, long splitBytes)
      throws IOException {
    SourceScan.Result scan =
        SourceScan.scan(
            new ByteArrayInputStream(data), splitBytes, LineRules.DEFAULT_MAX_LINE_BYTES);
    List<int[]> out = new ArrayList<>();
    long lines = 0;
    for (int s = 0; s < scan.splits().size(); s++) {
      SourceScan.SplitPoint p = scan.splits().get(s);
      long next =
          s + 1 < scan.splits().size() ? scan.splits().get(s + 1).startLine() : scan.lines();
      SplitChunker.Range range =
          SplitChunker.Range.of(p.startByte(), p.startLine(), next, scan.lines(), mode);
      if (range.isEmpty()) {
        continue;
      }
      ByteArrayInputStream in =
          new ByteArrayInputStream(data, (int) p.startByte(), data.length - (int) p.startByte());
      SplitChunker.Stats st =
          SplitChunker.run(
              in,
              range,
              mode,
              blockSize,
              LineRules.DEFAULT_MAX_LINE_BYTES,
              ByteTokenizer::encode,
              ByteTokenizer.BOS,
              ByteTokenizer.EOS,
              (b, unit) -> out.add(b),
              n -> {});
      lines += st.lines();
    }
    assertEquals(scan.lines(), lines, "every counted line processed exactly once");
    return out;
  }

  @Test
  void anySplitSizeGivesTheWholeFileBlocksInOrder() throws IOException {
    String text = randomText(7, 3500);
    byte[] data = text.getBytes(StandardCharsets.UTF_8);
    for (ChunkingMode mode : ChunkingMode.values()) {
      for (int bs : new int[] {7, 64}) {
        List<int[]> ref = ByteTokenizer.referenceBlocks(text, mode, bs, Long.MAX_VALUE);
        assertTrue(ref.size() > 10);
        long[] splitSizes =
            mode == ChunkingMode.FILE
                ? new long[] {Long.MAX_VALUE}
                : new long[] {1, 97, 4096, 1 << 20};
        for (long split : splitSizes) {
          List<int[]> got = runSplits(data, mode, bs, split);
          assertEquals(ref.size(), got.size(), mode + " bs=" + bs + " split=" + split);
          for (int i = 0; i < ref.size(); i++) {
            assertArrayEquals(ref.get(i), got.get(i), "block " + i);
          }
        }
      }
    }
  }

  @Test
  void groupRemaindersAreDroppedAndCounted() throws IOException {
    // 2500 lines of 3 bytes → 5 tokens each; groups of 1000 lines = 5000 tokens → 7 blocks of 700
    // (100 dropped), twice, then 500 lines = 2500 tokens → 3 blocks (400 dropped).
    String text = "abc\n".repeat(2500);
    byte[] data = text.getBytes(StandardCharsets.UTF_8);
    SplitChunker.Stats st =
        SplitChunker.run(
            new ByteArrayInputStream(data),
            new SplitChunker.Range(0, 0, 0, 2500),
            ChunkingMode.GROUP1000,
            700,
            1000,
            ByteTokenizer::encode,
            1,
            2,
            (b, u) -> {},
            n -> {});
    assertEquals(2500, st.lines());
    assertEquals(12500, st.tokens());
    assertEquals(17, st.blocks());
    assertEquals(600, st.droppedTokens());
    assertEquals(st.tokens(), st.blocks() * 700 + st.droppedTokens());
  }

  @Test
  void unitsAreGroupIndicesInGroupModeAndBlockIndicesInFileMode() throws IOException {
    String text = "abcdefgh\n".repeat(2100);
    byte[] data = text.getBytes(StandardCharsets.UTF_8);
    List<Long> units = new ArrayList<>();
    SplitChunker.run(
        new ByteArrayInputStream(data),
        new SplitChunker.Range(0, 0, 0, 2100),
        ChunkingMode.GROUP1000,
        1000,
        1000,
        ByteTokenizer::encode,
        1,
        2,
        (b, u) -> units.add(u),
        n -> {});
    // 10 tokens per line: 10 blocks per group of 1000 lines, one block from the 100-line tail.
    assertEquals(21, units.size());
    assertEquals(0L, units.get(0));
    assertEquals(1L, units.get(10));
    assertEquals(2L, units.get(20));
    units.clear();
    SplitChunker.run(
        new ByteArrayInputStream(data),
        new SplitChunker.Range(0, 0, 0, 2100),
        ChunkingMode.FILE,
        1000,
        1000,
        ByteTokenizer::encode,
        1,
        2,
        (b, u) -> units.add(u),
        n -> {});
    assertEquals(21, units.size());
    assertEquals(20L, units.get(20));
  }
}
