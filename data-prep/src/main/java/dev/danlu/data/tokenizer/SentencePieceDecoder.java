package dev.danlu.data.tokenizer;

/**
 * SentencePiece's {@code DecodeIds} in Java. DJL's JNI decode returns its string through JNI's
 * modified UTF-8, which mangles characters outside the BMP (an emoji comes back as "ð" and the rest
 * of the text is cut), so decoding is done here following {@code sentencepiece_processor.cc},
 * checked against {@code spm_decode} in the tests:
 *
 * <ul>
 *   <li>control pieces ({@code <s>}, {@code </s>}) decode to nothing;
 *   <li>the unknown piece decodes to the TrainerSpec's {@code unk_surface} (" ⁇ ");
 *   <li>'▁' becomes ' ', and the first non-control piece loses one leading '▁' (the dummy prefix);
 *   <li>runs of byte pieces {@code <0xXX>} are decoded as UTF-8, each invalid byte as U+FFFD.
 * </ul>
 */
final class SentencePieceDecoder {
  private static final char SPACE_SYMBOL = '\u2581';

  private final SentencePieceModel model;
  private final int[] byteOf; // byte value of a BYTE piece, else -1

  SentencePieceDecoder(SentencePieceModel model) {
    this.model = model;
    byteOf = new int[model.size()];
    for (int i = 0; i < model.size(); i++) {
      byteOf[i] = -1;
      String p = model.piece(i);
      if (model.type(i) == SentencePieceModel.BYTE && p.matches("<0x[0-9A-Fa-f]{2}>")) {
        byteOf[i] = Integer.parseInt(p.substring(3, 5), 16);
      }
    }
  }

  /** Text of {@code ids}; the caller has range-checked them. */
  String decode(int[] ids) {
    StringBuilder out = new StringBuilder(ids.length * 2);
    byte[] bytes = new byte[ids.length];
    int byteCount = 0;
    boolean atStart = true; // the dummy-prefix '▁' is still to be dropped
    for (int id : ids) {
      if (byteOf[id] >= 0) {
        bytes[byteCount++] = (byte) byteOf[id];
        atStart = false;
        continue;
      }
      if (byteCount > 0) {
        appendUtf8(bytes, byteCount, out);
        byteCount = 0;
      }
      int type = model.type(id);
      if (type == SentencePieceModel.CONTROL) {
        continue;
      }
      if (type == SentencePieceModel.UNKNOWN) {
        out.append(model.unkSurface());
      } else {
        String piece = model.piece(id);
        int from = atStart && model.addDummyPrefix() && piece.startsWith("\u2581") ? 1 : 0;
        for (int i = from; i < piece.length(); i++) {
          char c = piece.charAt(i);
          out.append(c == SPACE_SYMBOL ? ' ' : c);
        }
      }
      atStart = false;
    }
    if (byteCount > 0) {
      appendUtf8(bytes, byteCount, out);
    }
    return out.toString();
  }

  /** UTF-8 decoding as SentencePiece's {@code DecodeUTF8}: an invalid byte becomes U+FFFD. */
  static void appendUtf8(byte[] b, int len, StringBuilder out) {
    int i = 0;
    while (i < len) {
      int b0 = b[i] & 0xff;
      int cp = -1;
      int n = 1;
      if (b0 < 0x80) {
        cp = b0;
      } else if ((b0 & 0xE0) == 0xC0 && i + 1 < len && trail(b[i + 1])) {
        cp = ((b0 & 0x1F) << 6) | (b[i + 1] & 0x3F);
        n = 2;
        cp = cp >= 0x80 ? cp : -1;
      } else if ((b0 & 0xF0) == 0xE0 && i + 2 < len && trail(b[i + 1]) && trail(b[i + 2])) {
        cp = ((b0 & 0x0F) << 12) | ((b[i + 1] & 0x3F) << 6) | (b[i + 2] & 0x3F);
        n = 3;
        cp = cp >= 0x800 && validCodePoint(cp) ? cp : -1;
      } else if ((b0 & 0xF8) == 0xF0
          && i + 3 < len
          && trail(b[i + 1])
          && trail(b[i + 2])
          && trail(b[i + 3])) {
        cp =
            ((b0 & 0x07) << 18)
                | ((b[i + 1] & 0x3F) << 12)
                | ((b[i + 2] & 0x3F) << 6)
                | (b[i + 3] & 0x3F);
        n = 4;
        cp = cp >= 0x10000 && validCodePoint(cp) ? cp : -1;
      }
      if (cp < 0) {
        out.append('\uFFFD');
        i += 1;
      } else {
        out.appendCodePoint(cp);
        i += n;
      }
    }
  }

  private static boolean trail(byte x) {
    return (x & 0xC0) == 0x80;
  }

  private static boolean validCodePoint(int c) {
    return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF);
  }
}
