package dev.danlu.data.vocab;

import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The character rewrite rules of SentencePiece's named normalizers, computed from the JDK's Unicode
 * tables ({@link java.text.Normalizer}) the way sentencepiece's builder computes them from ICU's:
 *
 * <ul>
 *   <li>{@code nfkc}: every code point whose NFKC form differs maps to it; every NFKD-decomposed
 *       sequence that NFC composes differently maps to its NFC form, in every spelling whose
 *       characters NFKD-decompose to the sequence's characters one by one (e.g. "a" + U+0301 and
 *       U+FF41 + U+0301 both to "á"); rules that shorter rules already imply are dropped.
 *   <li>{@code nmt_nfkc}: {@code nfkc}, plus C0 controls other than tab/LF/FF/CR, DEL, U+008F and
 *       U+009F deleted; tab, LF, FF, CR, U+1680, U+200B, U+200C, U+200E, U+200F, U+2028, U+2029,
 *       U+2581, U+FEFF and U+FFFD to a space; the full-width tilde U+FF5E left as it is.
 *   <li>{@code identity}: no rules.
 * </ul>
 *
 * <p>A rule's key and value are strings of code points; the normalizer applies the rules by longest
 * match from the left ({@link SpmNormalizer}). This is not full NFKC (no canonical reordering of
 * combining marks), exactly as in spm. The rule list of sentencepiece 0.1.97 was generated from an
 * older Unicode version than the JDK's: characters assigned since then may have rules here that spm
 * lacks (see docs/vocabulary.md).
 */
public final class NormalizationRules {
  private NormalizationRules() {}

  /** The rule names {@code vocab train --normalization-rule-name} accepts. */
  public static final List<String> NAMES = List.of("nmt_nfkc", "nfkc", "identity");

  /**
   * The rules of {@code name}, sorted by key.
   *
   * @throws IllegalArgumentException for a name not in {@link #NAMES}
   */
  public static TreeMap<String, String> build(String name) {
    return switch (name) {
      case "identity" -> new TreeMap<>();
      case "nfkc" -> removeRedundant(nfkc());
      case "nmt_nfkc" -> {
        Map<String, String> m = nfkc();
        for (int c = 0x01; c <= 0x1F; c++) {
          if (c != 0x09 && c != 0x0A && c != 0x0C && c != 0x0D) {
            m.put(Character.toString(c), "");
          }
        }
        for (int c : new int[] {0x7F, 0x8F, 0x9F}) {
          m.put(Character.toString(c), "");
        }
        for (int c :
            new int[] {
              0x09, 0x0A, 0x0C, 0x0D, 0x1680, 0x200B, 0x200C, 0x200E, 0x200F, 0x2028, 0x2029,
              0x2581, 0xFEFF, 0xFFFD
            }) {
          m.put(Character.toString(c), " ");
        }
        m.remove("\uFF5E");
        yield removeRedundant(m);
      }
      default ->
          throw new IllegalArgumentException(
              "--normalization-rule-name "
                  + name
                  + " is not supported; use one of "
                  + String.join(", ", NAMES));
    };
  }

  /** ICU's U_IS_UNICODE_CHAR: not a surrogate, not a noncharacter. */
  private static boolean isUnicodeChar(int c) {
    return c < 0xD800 || (c > 0xDFFF && c <= 0x10FFFF && (c & 0xFFFE) != 0xFFFE && !isFdd(c));
  }

  private static boolean isFdd(int c) {
    return c >= 0xFDD0 && c <= 0xFDEF;
  }

  private static Map<String, String> nfkc() {
    Map<String, String> map = new HashMap<>();
    Map<Integer, List<Integer>> origins = new HashMap<>(); // NFKD char -> chars decomposing to it
    Set<String> decomposed = new HashSet<>();
    for (int cp = 1; cp <= 0x10FFFF; cp++) {
      if (!isUnicodeChar(cp)) {
        continue;
      }
      String s = Character.toString(cp);
      if (Normalizer.isNormalized(s, Normalizer.Form.NFKD)) {
        origins.computeIfAbsent(cp, k -> new ArrayList<>(2)).add(cp);
        continue; // NFKC of a single NFKD-stable character is itself
      }
      String nfkc = Normalizer.normalize(s, Normalizer.Form.NFKC);
      if (!nfkc.equals(s)) {
        map.put(s, nfkc);
      }
      String nfkd = Normalizer.normalize(s, Normalizer.Form.NFKD);
      if (nfkd.codePointCount(0, nfkd.length()) == 1) {
        origins.computeIfAbsent(nfkd.codePointAt(0), k -> new ArrayList<>(2)).add(cp);
      } else {
        decomposed.add(nfkd);
      }
    }
    for (String nfkd : decomposed) {
      String nfc = Normalizer.normalize(nfkd, Normalizer.Form.NFC);
      if (nfc.equals(nfkd)) {
        continue; // the single-character rule covers it
      }
      int[] cps = nfkd.codePoints().toArray();
      List<StringBuilder> spellings = new ArrayList<>();
      spellings.add(new StringBuilder());
      for (int c : cps) {
        List<Integer> alts = origins.get(c);
        if (alts == null) {
          throw new IllegalStateException(
              String.format("U+%04X in an NFKD form is not NFKD-stable", c));
        }
        List<StringBuilder> next = new ArrayList<>(spellings.size() * alts.size());
        for (StringBuilder sb : spellings) {
          for (int a : alts) {
            next.add(new StringBuilder(sb).appendCodePoint(a));
          }
        }
        spellings = next;
      }
      for (StringBuilder sb : spellings) {
        String orig = sb.toString();
        if (!orig.equals(nfc)) {
          map.put(orig, nfc);
        }
      }
    }
    return map;
  }

  /**
   * spm's RemoveRedundantMap: keeps every one-character rule and each longer rule whose result
   * differs from applying the shorter kept rules; then checks the kept rules reproduce all.
   */
  static TreeMap<String, String> removeRedundant(Map<String, String> rules) {
    Map<Integer, List<Map.Entry<String, String>>> byLength = new TreeMap<>();
    for (Map.Entry<String, String> e : rules.entrySet()) {
      byLength
          .computeIfAbsent(
              e.getKey().codePointCount(0, e.getKey().length()), k -> new ArrayList<>())
          .add(e);
    }
    Map<String, String> kept = new HashMap<>();
    int maxLen = 0;
    for (Map.Entry<Integer, List<Map.Entry<String, String>>> g : byLength.entrySet()) {
      int len = g.getKey();
      maxLen = len;
      List<Map.Entry<String, String>> add = new ArrayList<>();
      for (Map.Entry<String, String> e : g.getValue()) {
        if (len == 1 || !e.getValue().equals(apply(kept, e.getKey(), len - 1))) {
          add.add(e);
        }
      }
      for (Map.Entry<String, String> e : add) {
        kept.put(e.getKey(), e.getValue());
      }
    }
    for (Map.Entry<String, String> e : rules.entrySet()) {
      if (!e.getValue().equals(apply(kept, e.getKey(), maxLen))) {
        throw new IllegalStateException("normalization rules inconsistent at " + e.getKey());
      }
    }
    TreeMap<String, String> out = new TreeMap<>(BpeTrainer::compareCodePoints);
    out.putAll(kept);
    return out;
  }

  /** Rewrites {@code s} by longest match (keys of at most {@code maxLen} code points). */
  static String apply(Map<String, String> rules, String s, int maxLen) {
    StringBuilder out = new StringBuilder(s.length());
    int i = 0;
    while (i < s.length()) {
      int end = i;
      int[] ends = new int[maxLen];
      int n = 0;
      while (n < maxLen && end < s.length()) {
        end += Character.charCount(s.codePointAt(end));
        ends[n++] = end;
      }
      String hit = null;
      int hitEnd = -1;
      for (int k = n - 1; k >= 0; k--) {
        String v = rules.get(s.substring(i, ends[k]));
        if (v != null) {
          hit = v;
          hitEnd = ends[k];
          break;
        }
      }
      if (hit == null) {
        int c = s.codePointAt(i);
        out.appendCodePoint(c);
        i += Character.charCount(c);
      } else {
        out.append(hit);
        i = hitEnd;
      }
    }
    return out.toString();
  }
}
