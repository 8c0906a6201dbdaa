package dev.danlu.data.chunk;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Decodes UTF-8 line bytes to a String, replacing each malformed sequence with U+FFFD and counting
 * the replacements (the manifest reports them; the {@code fail} policy is enforced earlier, by the
 * scan, which knows file offsets). Not thread-safe: one per task.
 */
public final class Utf8Decoder {
  private final CharsetDecoder decoder =
      StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT);
  private CharBuffer out = CharBuffer.allocate(1024);
  private long replacements;

  /** Decodes {@code bytes[0, length)}. */
  public String decode(byte[] bytes, int length) {
    ByteBuffer in = ByteBuffer.wrap(bytes, 0, length);
    if (out.capacity() < length) {
      out = CharBuffer.allocate(Math.max(length, out.capacity() * 2));
    }
    out.clear();
    decoder.reset();
    while (true) {
      CoderResult r = decoder.decode(in, out, true);
      if (r.isUnderflow()) {
        r = decoder.flush(out);
        if (r.isUnderflow()) {
          break;
        }
      }
      if (r.isError()) {
        // Same as CodingErrorAction.REPLACE, but counted.
        in.position(in.position() + r.length());
        out.put('\uFFFD');
        replacements++;
        decoder.reset();
        continue;
      }
      if (r.isOverflow()) {
        CharBuffer bigger = CharBuffer.allocate(out.capacity() * 2);
        out.flip();
        bigger.put(out);
        out = bigger;
      } else {
        try {
          r.throwException();
        } catch (CharacterCodingException e) {
          throw new IllegalStateException(e);
        }
      }
    }
    out.flip();
    return out.toString();
  }

  /** Malformed sequences replaced so far. */
  public long replacements() {
    return replacements;
  }
}
