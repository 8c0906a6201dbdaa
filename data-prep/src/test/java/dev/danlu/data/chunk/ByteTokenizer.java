package dev.danlu.data.chunk;

import java.nio.charset.StandardCharsets;

/** Test tokenizer: one id per UTF-8 byte (byte + 3), so ids 0..2 stay free for unk/bos/eos. */
final class ByteTokenizer {
  static final int BOS = 1;
  static final int EOS = 2;

  private ByteTokenizer() {}

  static int[] encode(String s) {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    int[] ids = new int[b.length];
    for (int i = 0; i < b.length; i++) {
      ids[i] = (b[i] & 0xff) + 3;
    }
    return ids;
  }

  /**
   * The reference rule written the obvious way: split the decoded text on '\n', strip one '\r',
   * skip empty lines, wrap in BOS/EOS, concatenate per group (or per file), keep whole blocks.
   */
  static java.util.List<int[]> referenceBlocks(
      String text, ChunkingMode mode, int blockSize, long maxLineBytes) {
    java.util.List<int[]> lines = new java.util.ArrayList<>();
    for (String line : text.split("\n", -1)) {
      if (line.endsWith("\r")) {
        line = line.substring(0, line.length() - 1);
      }
      long raw = line.getBytes(StandardCharsets.UTF_8).length;
      if (line.isEmpty() || raw > maxLineBytes) {
        continue;
      }
      int[] body = encode(line);
      int[] ex = new int[body.length + 2];
      ex[0] = BOS;
      System.arraycopy(body, 0, ex, 1, body.length);
      ex[ex.length - 1] = EOS;
      lines.add(ex);
    }
    int group = mode == ChunkingMode.FILE ? Integer.MAX_VALUE : 1000;
    java.util.List<int[]> blocks = new java.util.ArrayList<>();
    for (int g = 0; g < lines.size(); g += Math.min(group, lines.size())) {
      java.util.List<Integer> cat = new java.util.ArrayList<>();
      for (int i = g; i < Math.min(lines.size(), (long) g + group); i++) {
        for (int id : lines.get(i)) {
          cat.add(id);
        }
      }
      for (int s = 0; s + blockSize <= cat.size(); s += blockSize) {
        int[] b = new int[blockSize];
        for (int j = 0; j < blockSize; j++) {
          b[j] = cat.get(s + j);
        }
        blocks.add(b);
      }
      if (group == Integer.MAX_VALUE) {
        break;
      }
    }
    return blocks;
  }
}
