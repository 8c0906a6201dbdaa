package dev.danlu.data.vocab;

/**
 * Which strings may become a piece (spm's IsValidSentencePiece with split_by_whitespace on and
 * whitespace as a prefix): at most max_sentencepiece_length characters; no U+2585, NUL, tab or
 * space; U+2581 only at the front; one Unicode script per piece (Hiragana, Katakana and U+30FC
 * count as Han, combining marks take the script before them, ASCII and full-width digits are
 * Common, or join any script when split_by_number is off); with split_digits a digit stands alone.
 *
 * <p>Scripts come from {@link Character.UnicodeScript} (the JDK's Unicode tables); spm ships its
 * own older table, so a character assigned since then may be classified differently.
 */
final class PieceRules {
  private PieceRules() {}

  private static final int ANY = -1;

  static boolean valid(int[] piece, BpeSpec spec) {
    if (piece.length == 0 || piece.length > spec.maxPieceLength()) {
      return false;
    }
    int prev = ANY;
    for (int pos = 0; pos < piece.length; pos++) {
      int c = piece[pos];
      if (c == SpmText.UNK_CHAR || c == 0 || c == SpmText.BOUNDARY || c == ' ') {
        return false;
      }
      if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
        return false;
      }
      if (c == SpmText.WS) {
        if (pos > 0) {
          return false;
        }
        continue;
      }
      int s = script(c);
      if (s == Character.UnicodeScript.INHERITED.ordinal()) {
        s = prev;
      }
      boolean digit = isDecimal(c);
      if (!spec.splitByNumber() && digit) {
        s = ANY;
      }
      if (spec.splitDigits() && digit && piece.length > 1) {
        return false;
      }
      if (spec.splitByUnicodeScript() && s != ANY && prev != ANY && prev != s) {
        return false;
      }
      prev = s;
    }
    return true;
  }

  private static final int HAN = Character.UnicodeScript.HAN.ordinal();
  private static final int COMMON = Character.UnicodeScript.COMMON.ordinal();

  private static int script(int c) {
    if (c == 0x30FC) {
      return HAN;
    }
    Character.UnicodeScript s = Character.UnicodeScript.of(c);
    return switch (s) {
      case HIRAGANA, KATAKANA -> HAN;
      case UNKNOWN -> COMMON;
      default -> s.ordinal();
    };
  }

  private static boolean isDecimal(int c) {
    return (c >= '0' && c <= '9') || (c >= 0xFF10 && c <= 0xFF19);
  }
}
