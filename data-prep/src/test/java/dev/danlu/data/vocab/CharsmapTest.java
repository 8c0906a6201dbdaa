package dev.danlu.data.vocab;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * The compiled charsmap without sentencepiece (NormalizerSpmTest compares with spm): the rules read
 * back, darts-clone's structural invariants, and the normalizer on hand-checked strings.
 */
class CharsmapTest {
  @Test
  void nmtNfkcRulesReadBackAndTheArrayKeepsDartsInvariants() {
    TreeMap<String, String> rules = NormalizationRules.build("nmt_nfkc");
    byte[] blob = Charsmap.forRule("nmt_nfkc");
    assertEquals(rules, Charsmap.decode(blob).rules());
    ByteBuffer b = ByteBuffer.wrap(blob).order(ByteOrder.LITTLE_ENDIAN);
    int n = b.getInt() / 4;
    int[] u = new int[n];
    b.asIntBuffer().get(u);
    assertEquals(0, n % 256, "whole 256-unit blocks");
    // validate(): the root is a node (label 0, no leaf, offset > 0), every node's base in range
    assertEquals(0, u[0] & 0x800000FF);
    assertEquals(0, (u[0] >>> 8) & 1);
    assertTrue(offset(u[0]) > 0);
    for (int i = 0; i < n; i++) {
      if ((u[i] & 0x80000000) != 0 || offset(u[i]) == 0) {
        continue; // a leaf, or an unused unit
      }
      assertTrue(((i ^ offset(u[i])) | 0xFF) < n, "unit " + i);
    }
    // spm's builder refuses tries where a key has 32 or more prefixes that are keys
    Charsmap cm = Charsmap.decode(blob);
    for (String k : rules.keySet()) {
      byte[] kb = k.getBytes(java.nio.charset.StandardCharsets.UTF_8);
      long m = cm.longestMatch(kb, 0, kb.length);
      assertEquals(kb.length, Charsmap.matchLength(m), "longest match of its own key " + k);
    }
  }

  private static int offset(int unit) {
    return (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
  }

  @Test
  void normalizesAsSpmDoes() {
    SpmNormalizer nmt = new SpmNormalizer(Charsmap.forRule("nmt_nfkc"), true, true);
    Map<String, String> cases =
        Map.of(
            "ＡＢＣ　ａｂｃ　１２３，全角：标点！？～",
            "▁ABC▁abc▁123,全角:标点!?～",
            "  two  spaces\tand tab  ",
            "▁two▁spaces▁and▁tab",
            "ctrl\u0001\u007fdel\u200bzw\ufeffbom",
            "▁ctrldel▁zw▁bom",
            "ﬁ ① ½ ㎏ e\u0301 ｅ\u0301 \u1100\u1161",
            "▁fi▁1▁1⁄2▁kg▁é▁é▁가",
            " \u3000\u00a0 ",
            "",
            "¨x",
            "▁̈x");
    cases.forEach((in, want) -> assertEquals(want, nmt.normalize(in), in));
    SpmNormalizer identity = new SpmNormalizer(new byte[0], true, true);
    assertEquals("▁ＡＢＣ▁x\t▁y", identity.normalize("  ＡＢＣ   x\t y  "));
    SpmNormalizer keepSpaces = new SpmNormalizer(Charsmap.forRule("nfkc"), false, false);
    assertEquals("▁▁a▁▁b▁", keepSpaces.normalize("  a\u3000\u3000b "));
  }
}
