package dev.danlu.train.serve;

import dev.danlu.data.tokenizer.TextTokenizer;
import java.util.ArrayList;
import java.util.List;

/**
 * Generated ids to text as it streams: each new token's text is the difference between decoding
 * everything so far and what was already sent (SentencePiece joins pieces, and a character may span
 * several byte pieces, so tokens cannot be decoded one by one). Text is held back while it ends in
 * an incomplete character or could be the start of a stop string; a stop string ends the text
 * before it.
 *
 * <p>Completions continue the prompt, so the new ids are decoded after the prompt's last ids (a
 * word continued mid-way gets no spurious space). Chat answers are decoded on their own and
 * stripped of surrounding whitespace, as the reference's {@code output.strip()}; trailing
 * whitespace is held until more text follows, so the stream's concatenation equals the stripped
 * answer.
 */
final class TextStream {
  /** Prompt ids decoded before the new ones (enough for a word and a split character). */
  static final int CONTEXT_TOKENS = 8;

  private final TextTokenizer tok;
  private final int[] context;
  private final String contextText;
  private final List<String> stops;
  private final boolean strip;
  private final int[] skipIds;
  private int[] ids = new int[16];
  private int n;
  private int sent; // chars of text() already returned
  private boolean stopped;

  /**
   * @param promptTail ids decoded before the generated ones (completion) or empty (chat)
   * @param stops stop strings (may be empty)
   * @param strip strip surrounding whitespace (chat)
   * @param skipIds special ids left out of the text (BOS, EOS, pad)
   */
  TextStream(
      TextTokenizer tok, int[] promptTail, List<String> stops, boolean strip, int... skipIds) {
    this.tok = tok;
    int from = Math.max(0, promptTail.length - CONTEXT_TOKENS);
    this.context = java.util.Arrays.copyOfRange(promptTail, from, promptTail.length);
    this.skipIds = skipIds;
    this.contextText = decode(context, context.length);
    this.stops = new ArrayList<>(stops);
    this.strip = strip;
  }

  private String decode(int[] a, int len) {
    int[] kept = new int[len];
    int k = 0;
    outer:
    for (int i = 0; i < len; i++) {
      for (int s : skipIds) {
        if (a[i] == s) {
          continue outer;
        }
      }
      kept[k++] = a[i];
    }
    synchronized (tok) {
      return tok.decode(java.util.Arrays.copyOf(kept, k));
    }
  }

  /** All generated text so far (before stop handling and hold-back). */
  private String text() {
    int[] all = new int[context.length + n];
    System.arraycopy(context, 0, all, 0, context.length);
    System.arraycopy(ids, 0, all, context.length, n);
    String full = decode(all, all.length);
    String t;
    if (full.startsWith(contextText)) {
      t = full.substring(contextText.length());
    } else {
      t = decode(ids, n); // the boundary merged differently: decode the new ids alone
    }
    return strip ? t.stripLeading() : t;
  }

  /** Whether a stop string ended the text. */
  boolean stopped() {
    return stopped;
  }

  /** Adds a token; returns the text that is now safe to send (maybe empty). */
  String push(int token) {
    if (stopped) {
      return "";
    }
    if (n == ids.length) {
      ids = java.util.Arrays.copyOf(ids, 2 * n);
    }
    ids[n++] = token;
    String t = text();
    int cut = -1;
    for (String s : stops) {
      int at = t.indexOf(s, Math.max(0, sent - s.length()));
      if (at >= 0 && (cut < 0 || at < cut)) {
        cut = at;
      }
    }
    if (cut >= 0) {
      stopped = true;
      String end = strip ? t.substring(0, cut).stripTrailing() : t.substring(0, cut);
      return take(end, end.length());
    }
    return take(t, t.length() - holdBack(t));
  }

  /** The rest of the text at the end of the sequence. */
  String finish() {
    if (stopped) {
      return "";
    }
    String t = text();
    if (strip) {
      t = t.stripTrailing();
    }
    // an unfinished character at the very end is decoded as the tokenizer decodes it
    return take(t, t.length());
  }

  private String take(String t, int upTo) {
    if (upTo <= sent) {
      return "";
    }
    String out = t.substring(sent, upTo);
    sent = upTo;
    return out;
  }

  /** Characters at the end of {@code t} not to send yet. */
  private int holdBack(String t) {
    int hold = 0;
    // an incomplete UTF-8 sequence decodes to U+FFFD (one per byte) until its last byte arrives
    while (hold < t.length() && t.charAt(t.length() - 1 - hold) == '\uFFFD') {
      hold++;
    }
    for (String s : stops) {
      for (int k = Math.min(s.length() - 1, t.length()); k > hold; k--) {
        if (t.endsWith(s.substring(0, k))) {
          hold = k;
          break;
        }
      }
    }
    if (strip) {
      int ws = 0;
      while (ws < t.length() && Character.isWhitespace(t.charAt(t.length() - 1 - ws))) {
        ws++;
      }
      hold = Math.max(hold, ws);
    }
    return hold;
  }
}
