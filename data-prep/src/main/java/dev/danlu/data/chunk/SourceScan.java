package dev.danlu.data.chunk;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * The cheap first pass over a source file: no tokenization, one sequential read.
 *
 * <p>It computes the content sha256 (the cache key), finds NUL bytes (binary files), validates
 * UTF-8 (first bad offset and the number of replacements the tokenizing pass will make), counts the
 * lines that become examples, and plans the file's splits: every {@code splitBytes} it starts a new
 * split at the next line start and records how many counted lines precede it, which is what lets
 * splits be tokenized independently with the exact group semantics.
 */
public final class SourceScan {
  /** A split's first byte (a line start) and the number of counted lines before it. */
  public record SplitPoint(long startByte, long startLine) implements java.io.Serializable {}

  /**
   * @param sha256 hex content hash, null if the scan stopped at a NUL byte
   * @param nulOffset offset of the first NUL byte, -1 if none (the file is then binary)
   * @param firstInvalidUtf8Offset offset of the first malformed UTF-8 sequence, -1 if none
   * @param utf8Replacements malformed sequences (each becomes one U+FFFD)
   * @param lines lines that become examples (non-empty, not oversized)
   * @param oversizedLines lines longer than the limit (skipped, reported)
   */
  public record Result(
      long size,
      String sha256,
      long nulOffset,
      long firstInvalidUtf8Offset,
      long utf8Replacements,
      long lines,
      long oversizedLines,
      List<SplitPoint> splits)
      implements java.io.Serializable {
    public boolean binary() {
      return nulOffset >= 0;
    }
  }

  private SourceScan() {}

  /**
   * @param splitBytes nominal split size; {@link Long#MAX_VALUE} for a single split
   */
  public static Result scan(InputStream in, long splitBytes, int maxLineBytes) throws IOException {
    MessageDigest sha;
    try {
      sha = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    CharsetDecoder decoder =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    ByteBuffer utf8In = ByteBuffer.allocate((1 << 16) + 8);
    CharBuffer utf8Out = CharBuffer.allocate(1 << 16);
    long utf8Base = 0; // file offset of utf8In's first byte
    long firstInvalid = -1;
    long replacements = 0;

    byte[] chunk = new byte[1 << 16];
    List<SplitPoint> splits = new ArrayList<>();
    splits.add(new SplitPoint(0, 0));
    long nextBoundary = splitBytes;
    long pos = 0;
    boolean atLineStart = true;
    long rawLen = 0;
    byte firstByte = 0;
    long lines = 0;
    long oversized = 0;
    int n;
    while ((n = in.readNBytes(chunk, 0, chunk.length)) > 0) {
      for (int i = 0; i < n; i++, pos++) {
        byte b = chunk[i];
        if (atLineStart) {
          if (pos >= nextBoundary) {
            splits.add(new SplitPoint(pos, lines));
            nextBoundary = pos >= Long.MAX_VALUE - splitBytes ? Long.MAX_VALUE : pos + splitBytes;
          }
          atLineStart = false;
          rawLen = 0;
          firstByte = b;
        }
        if (b == '\n') {
          if (LineRules.counts(rawLen, rawLen == 1 && firstByte == '\r', maxLineBytes)) {
            lines++;
          } else if (LineRules.isOversized(rawLen, maxLineBytes)) {
            oversized++;
          }
          atLineStart = true;
        } else {
          rawLen++;
          if (b == 0) {
            return new Result(
                pos + 1, null, pos, firstInvalid, replacements, lines, oversized, splits);
          }
        }
      }
      sha.update(chunk, 0, n);
      utf8In.put(chunk, 0, n);
      utf8In.flip();
      while (true) {
        CoderResult r = decoder.decode(utf8In, utf8Out, false);
        if (r.isOverflow()) {
          utf8Out.clear();
        } else if (r.isError()) {
          if (firstInvalid < 0) {
            firstInvalid = utf8Base + utf8In.position();
          }
          replacements++;
          utf8In.position(utf8In.position() + r.length());
        } else {
          break; // underflow: need more bytes
        }
      }
      utf8Base += utf8In.position();
      utf8In.compact();
      utf8Out.clear();
    }
    if (!atLineStart) {
      if (LineRules.counts(rawLen, rawLen == 1 && firstByte == '\r', maxLineBytes)) {
        lines++;
      } else if (LineRules.isOversized(rawLen, maxLineBytes)) {
        oversized++;
      }
    }
    // A sequence truncated by end of file is malformed too.
    utf8In.flip();
    while (true) {
      CoderResult r = decoder.decode(utf8In, utf8Out, true);
      if (r.isOverflow()) {
        utf8Out.clear();
      } else if (r.isError()) {
        if (firstInvalid < 0) {
          firstInvalid = utf8Base + utf8In.position();
        }
        replacements++;
        utf8In.position(utf8In.position() + r.length());
      } else {
        break;
      }
    }
    return new Result(
        pos,
        HexFormat.of().formatHex(sha.digest()),
        -1,
        firstInvalid,
        replacements,
        lines,
        oversized,
        List.copyOf(splits));
  }
}
