package dev.danlu.data.chunk;

import java.io.IOException;
import java.io.InputStream;
import java.util.function.Function;
import java.util.function.LongConsumer;

/**
 * Tokenizes and chunks one byte range of a file with the exact group semantics of the whole file.
 *
 * <p>A split starts at a line boundary and knows (from the planning pass) how many counted lines
 * precede it. It owns the groups that <em>start</em> inside it: it skips the tail of a group begun
 * in the previous split, then reads past its own end to finish its last group. So the blocks of a
 * file are the same for any split size.
 */
public final class SplitChunker {
  /** Stats of one processed range. */
  public record Stats(long lines, long tokens, long blocks, long droppedTokens, long bytesRead) {}

  /**
   * Which lines of a file a split processes.
   *
   * @param startByte the split's first byte (a line start)
   * @param startLine number of counted lines before {@code startByte}
   * @param beginLine first line this split processes (a group start, {@code >= startLine})
   * @param endLine first line it does not process (a group start, or the file's line count)
   */
  public record Range(long startByte, long startLine, long beginLine, long endLine)
      implements java.io.Serializable {
    /** Range for the split starting at {@code startByte}/{@code startLine}, with the next at. */
    public static Range of(
        long startByte, long startLine, long nextStartLine, long totalLines, ChunkingMode mode) {
      long g = mode.groupLines();
      long begin = ceilToGroup(startLine, g);
      long end = Math.min(ceilToGroup(nextStartLine, g), totalLines);
      return new Range(startByte, startLine, begin, Math.max(begin, end));
    }

    private static long ceilToGroup(long line, long g) {
      if (g == Long.MAX_VALUE) {
        return line == 0 ? 0 : Long.MAX_VALUE;
      }
      return (line + g - 1) / g * g;
    }

    public boolean isEmpty() {
      return beginLine >= endLine;
    }
  }

  private SplitChunker() {}

  /**
   * @param in the file's bytes from {@code range.startByte()}
   * @param encode the tokenizer (no BOS/EOS)
   * @param sink receives full blocks
   * @param progress receives bytes consumed since the last call (roughly every MiB)
   */
  public static Stats run(
      InputStream in,
      Range range,
      ChunkingMode mode,
      int blockSize,
      int maxLineBytes,
      Function<String, int[]> encode,
      int bos,
      int eos,
      BlockChunker.BlockSink sink,
      LongConsumer progress)
      throws IOException {
    LineReader reader = new LineReader(in, range.startByte(), maxLineBytes);
    // Replacement and oversized-line counts come from the planning scan, which sees every byte
    // once.
    Utf8Decoder utf8 = new Utf8Decoder();
    BlockChunker chunker = new BlockChunker(blockSize, mode, range.beginLine(), sink);
    long line = range.startLine();
    long reported = range.startByte();
    while (line < range.endLine() && reader.next()) {
      if (reader.lineEnd() - reported >= (1 << 20)) {
        progress.accept(reader.lineEnd() - reported);
        reported = reader.lineEnd();
      }
      if (!reader.counts()) {
        continue;
      }
      if (line >= range.beginLine()) {
        String text = utf8.decode(reader.bytes(), reader.length());
        chunker.addLine(bos, encode.apply(text), eos);
      }
      line++;
    }
    chunker.endGroup();
    if (line < range.endLine() && range.endLine() != Long.MAX_VALUE) {
      throw new IOException(
          "file ended after line "
              + line
              + " but the plan expected "
              + range.endLine()
              + " counted lines: it changed while being processed; re-run prep");
    }
    progress.accept(reader.lineEnd() - reported);
    return new Stats(
        chunker.lines(),
        chunker.tokens(),
        chunker.blocks(),
        chunker.droppedTokens(),
        reader.lineEnd() - range.startByte());
  }
}
