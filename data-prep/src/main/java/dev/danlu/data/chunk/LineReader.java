package dev.danlu.data.chunk;

import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;

/**
 * Streams the lines of a text file as raw bytes, in constant memory per line up to a limit.
 *
 * <p>Lines end at {@code '\n'}; one trailing {@code '\r'} is removed (CRLF files). A last line
 * without a terminating newline is still a line. A line longer than {@code maxLineBytes} is not
 * materialized: its bytes are consumed and counted, and {@link #oversized()} reports it, so a 100
 * MB line never lands on the heap. The rule for which lines count is {@link LineRules}, shared with
 * the cheap first pass that plans file splits.
 */
public final class LineReader {
  private final InputStream in;
  private final int maxLineBytes;
  private final byte[] chunk = new byte[1 << 16];
  private int chunkPos;
  private int chunkLen;
  private boolean eof;

  private byte[] line = new byte[256];
  private int lineLen;
  private long rawLen;
  private long lineStart;
  private long position;

  /**
   * @param in the bytes, positioned at a line start
   * @param startOffset the byte offset of {@code in}'s first byte in the file (for error messages)
   * @param maxLineBytes lines longer than this (without the newline) are reported as oversized
   */
  public LineReader(InputStream in, long startOffset, int maxLineBytes) {
    this.in = in;
    this.position = startOffset;
    this.maxLineBytes = maxLineBytes;
  }

  /** Advances to the next line; false at end of input. */
  public boolean next() throws IOException {
    lineLen = 0;
    rawLen = 0;
    lineStart = position;
    boolean sawAny = false;
    while (true) {
      if (chunkPos == chunkLen) {
        if (eof || !fill()) {
          return sawAny;
        }
      }
      sawAny = true;
      int start = chunkPos;
      int nl = -1;
      for (int i = chunkPos; i < chunkLen; i++) {
        if (chunk[i] == '\n') {
          nl = i;
          break;
        }
      }
      int end = nl < 0 ? chunkLen : nl;
      append(start, end - start);
      chunkPos = nl < 0 ? chunkLen : nl + 1;
      position += chunkPos - start;
      if (nl >= 0) {
        return true;
      }
    }
  }

  private boolean fill() throws IOException {
    int n = in.readNBytes(chunk, 0, chunk.length);
    chunkPos = 0;
    chunkLen = n;
    if (n < chunk.length) {
      eof = true;
    }
    return n > 0;
  }

  private void append(int from, int n) {
    rawLen += n;
    if (rawLen > maxLineBytes) {
      // Past the limit: keep counting, stop storing (the line will be reported, not tokenized).
      return;
    }
    if (lineLen + n > line.length) {
      line = Arrays.copyOf(line, Math.max(line.length * 2, lineLen + n));
    }
    System.arraycopy(chunk, from, line, lineLen, n);
    lineLen += n;
  }

  /** The line's bytes without the newline and trailing CR; valid until the next call. */
  public byte[] bytes() {
    return line;
  }

  /** Number of valid bytes in {@link #bytes()} (the trailing CR excluded). */
  public int length() {
    return lineLen > 0 && line[lineLen - 1] == '\r' ? lineLen - 1 : lineLen;
  }

  /** Byte offset of the line's first byte in the file. */
  public long lineStart() {
    return lineStart;
  }

  /** Byte offset just past this line's newline (the next line's start). */
  public long lineEnd() {
    return position;
  }

  /** Length of the line in the file, without the newline (a trailing CR included). */
  public long rawLength() {
    return rawLen;
  }

  /** True if the line exceeded the limit and its bytes were not kept. */
  public boolean oversized() {
    return LineRules.isOversized(rawLen, maxLineBytes);
  }

  /** True if this line produces an example (see {@link LineRules}). */
  public boolean counts() {
    return LineRules.counts(rawLen, rawLen == 1 && line[0] == '\r', maxLineBytes);
  }
}
