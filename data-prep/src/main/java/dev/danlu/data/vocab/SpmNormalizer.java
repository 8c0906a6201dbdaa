package dev.danlu.data.vocab;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * SentencePiece's Normalizer::Normalize over a model's NormalizerSpec (escape_whitespaces on): the
 * precompiled charsmap applied by longest match on UTF-8 bytes (no rule: the character is copied),
 * with the whitespace handling around it: leading spaces (characters whose rewrite is exactly " ")
 * dropped; a U+2581 dummy prefix; spaces at the start of a rewrite dropped after a space; every
 * space written as U+2581; trailing U+2581 dropped. This is what spm_train applies to every input
 * line and spm_encode to every input, so training and encoding see the same text.
 */
public final class SpmNormalizer {
  private static final byte[] WS = "\u2581".getBytes(StandardCharsets.UTF_8);

  private final Charsmap charsmap; // null: identity
  private final boolean addDummyPrefix;
  private final boolean removeExtraWhitespaces;

  /**
   * @param precompiledCharsmap the NormalizerSpec's blob, empty for the identity rule
   */
  public SpmNormalizer(
      byte[] precompiledCharsmap, boolean addDummyPrefix, boolean removeExtraWhitespaces) {
    this.charsmap = precompiledCharsmap.length == 0 ? null : Charsmap.decode(precompiledCharsmap);
    this.addDummyPrefix = addDummyPrefix;
    this.removeExtraWhitespaces = removeExtraWhitespaces;
  }

  /** The normalized form of {@code line} (valid UTF-16 in, the spm-normalized text out). */
  public String normalize(String line) {
    byte[] in = line.getBytes(StandardCharsets.UTF_8);
    int n = in.length;
    int i = 0;
    if (removeExtraWhitespaces) {
      while (i < n) {
        long m = prefix(in, i);
        if (!isSingleSpace(in, m)) {
          break;
        }
        i += len(m);
      }
    }
    if (i == n) {
      return "";
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream(n + 8);
    if (addDummyPrefix) {
      out.writeBytes(WS);
    }
    boolean prevSpace = removeExtraWhitespaces;
    while (i < n) {
      long m = prefix(in, i);
      byte[] src = source(in, m);
      int from = start(m);
      int to = end(src, m);
      if (prevSpace) {
        while (from < to && src[from] == ' ') {
          from++;
        }
      }
      if (from < to) {
        for (int k = from; k < to; k++) {
          if (src[k] == ' ') {
            out.writeBytes(WS);
          } else {
            out.write(src[k]);
          }
        }
        prevSpace = src[to - 1] == ' ';
      }
      i += len(m);
      if (!removeExtraWhitespaces) {
        prevSpace = false;
      }
    }
    byte[] b = out.toByteArray();
    int end = b.length;
    if (removeExtraWhitespaces) {
      while (end >= 3 && b[end - 3] == WS[0] && b[end - 2] == WS[1] && b[end - 1] == WS[2]) {
        end -= 3;
      }
    }
    return new String(b, 0, end, StandardCharsets.UTF_8);
  }

  // A prefix match is packed in a long: bit 63 set = a rule's result (offset in the low 31 bits),
  // else the input's own bytes starting at the low 31 bits; bits 32-62 the input bytes consumed.

  private long prefix(byte[] in, int i) {
    if (charsmap != null) {
      long m = charsmap.longestMatch(in, i, in.length);
      if (m != 0) {
        return Long.MIN_VALUE | ((long) Charsmap.matchLength(m) << 32) | Charsmap.result(m);
      }
    }
    return ((long) utf8Length(in[i]) << 32) | i;
  }

  private static int utf8Length(byte lead) {
    int b = lead & 0xff;
    return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
  }

  private static int len(long m) {
    return (int) ((m >>> 32) & 0x7fffffff);
  }

  private static int start(long m) {
    return (int) (m & 0x7fffffff);
  }

  private byte[] source(byte[] in, long m) {
    return m < 0 ? charsmap.strings() : in;
  }

  private int end(byte[] src, long m) {
    if (m < 0) {
      int e = start(m);
      while (src[e] != 0) {
        e++;
      }
      return e;
    }
    return start(m) + len(m);
  }

  private boolean isSingleSpace(byte[] in, long m) {
    byte[] src = source(in, m);
    int from = start(m);
    return end(src, m) - from == 1 && src[from] == ' ';
  }
}
