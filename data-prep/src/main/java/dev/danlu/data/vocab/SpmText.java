package dev.danlu.data.vocab;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Consumer;

/**
 * What {@code spm_train} does to one input line before counting: the normalizer of the spec's rule
 * ({@link SpmNormalizer}: the rule's charsmap and SentencePiece's whitespace handling, leading,
 * trailing and repeated spaces dropped, a dummy prefix, spaces escaped as U+2581), meta pieces in
 * the normalized text replaced by a tab (a piece boundary), then the split into words, each
 * starting at a U+2581.
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
  private final SpmNormalizer normalizer;
  private final List<String> metaLongestFirst;

  /**
   * @param charsmap the compiled rules of {@code spec.normalization()} ({@link Charsmap#forRule})
   */
  public SpmText(BpeSpec spec, byte[] charsmap) {
    this.spec = spec;
    this.normalizer =
        new SpmNormalizer(charsmap, spec.addDummyPrefix(), spec.removeExtraWhitespaces());
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
    return replaceMeta(normalizer.normalize(line));
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
