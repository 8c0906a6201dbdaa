package dev.danlu.data.vocab;

import dev.danlu.data.tokenizer.SentencePieceModel;
import dev.danlu.data.tokenizer.SentencePieceTokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * {@code vocab merge --check}: re-reads the written model and checks it is what the reference merge
 * produces: the base pieces unchanged at their ids, then exactly the added pieces with score 0 and
 * the normal type; the SentencePiece C++ library loads it and encodes the sample as danlu's Java
 * encoder does, and decoding gives the sample back. Reports tokens per character before and after.
 */
public final class MergeCheck {
  private MergeCheck() {}

  /** Default sample: Chinese poetry and prose, English, digits, spaces. */
  public static final List<String> SAMPLE =
      List.of(
          "床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。",
          "人工智能是计算机科学的一个分支，它企图了解智能的实质。",
          "The quick brown fox jumps over the lazy dog; 2024年3月15日 下午3点。",
          "  多个  空格   and  English words 混合 ");

  /** Tokens per character of the sample under the base and the merged model. */
  public record Report(double baseTokensPerChar, double mergedTokensPerChar) {}

  public static Report check(
      Path base, Path merged, VocabMerge.Result expected, List<String> sample) throws IOException {
    try (SentencePieceTokenizer b = SentencePieceTokenizer.load(base);
        SentencePieceTokenizer m = SentencePieceTokenizer.load(merged)) {
      SentencePieceModel bm = b.model();
      SentencePieceModel mm = m.model();
      if (mm.size() != expected.mergedSize()) {
        throw new IOException(
            merged + ": " + mm.size() + " pieces, expected " + expected.mergedSize());
      }
      for (int i = 0; i < bm.size(); i++) {
        if (!bm.piece(i).equals(mm.piece(i))
            || bm.score(i) != mm.score(i)
            || bm.type(i) != mm.type(i)) {
          throw new IOException(merged + ": base piece " + i + " changed");
        }
      }
      for (int i = 0; i < expected.added().size(); i++) {
        int id = bm.size() + i;
        if (!mm.piece(id).equals(expected.added().get(i))
            || mm.score(id) != 0f
            || mm.type(id) != SentencePieceModel.NORMAL) {
          throw new IOException(merged + ": appended piece " + id + " is not the expected one");
        }
      }
      long chars = 0;
      long bt = 0;
      long mt = 0;
      for (String s : sample) {
        int[] nat = m.encodeNative(s);
        int[] java = m.encode(s);
        if (!Arrays.equals(nat, java)) {
          throw new IOException(
              merged + ": SentencePiece and danlu encode the sample differently: " + s);
        }
        String back = m.decode(nat);
        String expectedBack = s.strip().replaceAll(" +", " ");
        if (!back.equals(s) && !back.equals(expectedBack)) {
          throw new IOException(merged + ": decoding does not give the sample back: " + s);
        }
        chars += s.codePointCount(0, s.length());
        bt += b.encodeNative(s).length;
        mt += nat.length;
      }
      return new Report(bt / (double) chars, mt / (double) chars);
    }
  }
}
