package dev.danlu.data.vocab;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Consumer;

/**
 * What {@code spm_train} does to one input line before counting: the identity normalizer with
 * SentencePiece's whitespace handling (leading, trailing and repeated spaces dropped, a dummy
 * prefix, spaces escaped as U+2581), meta pieces in the text replaced by a tab (a piece boundary),
 * then the split into words, each starting at a U+2581.
 */
public final class SpmText {
  /** U+2581, SentencePiece's escaped space. */
  public static final int WS = 0x2581;

  /**
   * U+2585, the trainer's stand-in for characters outside the alphabet; lines with it are skipped.
   */
  public static final int UNK_CHAR = 0x2585;

  /** The piece-boundary character meta pieces are replaced with. */
  public static final int BOUNDARY = '\t';

  private final BpeSpec spec;
  private final List<String> metaLongestFirst;

  public SpmText(BpeSpec spec) {
    this.spec = spec;
    List<String> m = new ArrayList<>(spec.metaPieces());
    m.sort(Comparator.comparingInt(String::length).reversed());
    this.metaLongestFirst = m;
  }

  /** Whether spm_train reads a line of {@code utf8Bytes} bytes holding {@code line}. */
  public boolean accepts(String line, int utf8Bytes) {
    return !line.isEmpty() && utf8Bytes <= spec.maxSentenceLength() && line.indexOf(UNK_CHAR) < 0;
  }

  /** The normalized line, possibly empty. */
  public String normalize(String line) {
    StringBuilder sb = new StringBuilder(line.length() + 2);
    int i = 0;
    if (spec.removeExtraWhitespaces()) {
      while (i < line.length() && line.charAt(i) == ' ') {
        i++;
      }
    }
    if (i == line.length()) {
      return "";
    }
    if (spec.addDummyPrefix()) {
      sb.append((char) WS);
    }
    boolean prevSpace = spec.removeExtraWhitespaces();
    for (; i < line.length(); i++) {
      char c = line.charAt(i);
      if (c == ' ') {
        if (!prevSpace) {
          sb.append((char) WS);
        }
        prevSpace = spec.removeExtraWhitespaces();
      } else {
        sb.append(c);
        prevSpace = false;
      }
    }
    if (spec.removeExtraWhitespaces()) {
      int n = sb.length();
      while (n > 0 && sb.charAt(n - 1) == WS) {
        n--;
      }
      sb.setLength(n);
    }
    return replaceMeta(sb.toString());
  }

  private String replaceMeta(String s) {
    if (s.indexOf('<') < 0) {
      return s;
    }
    StringBuilder sb = new StringBuilder(s.length());
    int i = 0;
    outer:
    while (i < s.length()) {
      for (String m : metaLongestFirst) {
        if (s.startsWith(m, i)) {
          sb.append((char) BOUNDARY);
          i += m.length();
          continue outer;
        }
      }
      sb.append(s.charAt(i++));
    }
    return sb.toString();
  }

  /** The words of a normalized line: a new word starts at the beginning and at every U+2581. */
  public static void words(String normalized, Consumer<String> sink) {
    int start = 0;
    for (int i = 1; i < normalized.length(); i++) {
      if (normalized.charAt(i) == WS) {
        sink.accept(normalized.substring(start, i));
        start = i;
      }
    }
    if (!normalized.isEmpty()) {
      sink.accept(normalized.substring(start));
    }
  }
}
