package dev.danlu.data.tokenizer;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** Real and adversarial test lines: corpora samples, the alpaca-zh SFT set, nasty edge cases. */
final class TestTexts {
  private TestTexts() {}

  static Path shared(String rel) {
    return dev.danlu.testkit.Prereq.shared(rel);
  }

  static Path cache(String rel) {
    return dev.danlu.testkit.Prereq.cached(rel);
  }

  /**
   * Up to {@code linesPerFile} lines from each of {@code files} files spread evenly over the sorted
   * directory listing, so several sources (poems, ci, classics, speeches) are covered.
   */
  static List<String> sample(Path dir, int files, int linesPerFile) throws IOException {
    List<Path> all;
    try (Stream<Path> s = Files.list(dir)) {
      all = s.filter(p -> p.toString().endsWith(".txt")).sorted().toList();
    }
    assumeTrue(!all.isEmpty(), dev.danlu.testkit.Prereq.SETUP + " no .txt files in " + dir);
    List<String> lines = new ArrayList<>();
    int step = Math.max(1, all.size() / files);
    for (int i = 0; i < all.size() && i / step < files; i += step) {
      String text = Files.readString(all.get(i), StandardCharsets.UTF_8);
      List<String> fileLines = SpmReference.splitLines(text);
      lines.addAll(fileLines.subList(0, Math.min(linesPerFile, fileLines.size())));
    }
    return lines;
  }

  /** Lines {@code [from, from + count)} of one file. */
  static List<String> lines(Path file, int from, int count) throws IOException {
    List<String> all = SpmReference.splitLines(Files.readString(file, StandardCharsets.UTF_8));
    return new ArrayList<>(
        all.subList(Math.min(from, all.size()), Math.min(from + count, all.size())));
  }

  static long utf8Bytes(List<String> lines) {
    return lines.stream().mapToLong(l -> l.getBytes(StandardCharsets.UTF_8).length + 1).sum();
  }

  /** Every instruction/input/output string of alpaca-zh-2000, split on '\n' like spm_encode. */
  static List<String> alpacaLines() throws IOException {
    Path json = shared("fixtures/sft/alpaca-zh-2000.json");
    List<String> lines = new ArrayList<>();
    for (JsonNode ex : new ObjectMapper().readTree(json.toFile())) {
      for (String field : List.of("instruction", "input", "output")) {
        lines.addAll(SpmReference.splitLines(ex.path(field).asText() + "\n"));
      }
    }
    return lines;
  }

  /** Lines that break naive tokenizers: whitespace runs, controls, astral, NFKC, huge lines. */
  static List<String> nasty(String longLineSeed) {
    return nasty(longLineSeed, 1 << 20);
  }

  /** As {@link #nasty(String)} with the long lines {@code longBytes} long. */
  static List<String> nasty(String longLineSeed, int longBytes) {
    List<String> lines =
        new ArrayList<>(
            List.of(
                "",
                " ",
                "   ",
                "   leading spaces",
                "trailing spaces   ",
                "multiple     spaces  in   between",
                "\ttab\tseparated\t",
                "\t",
                "a\u000bb\u000cc vertical tab and form feed",
                "nul\u0000inside",
                "\u0001\u0002\u001f\u007f controls",
                "\u0085 NEL \u2028 LS \u2029 PS",
                "\r",
                "lone\rcarriage return",
                "ends with carriage return\r",
                "😀🎉 emoji 👨‍👩‍👧‍👦 family ZWJ 👍🏽",
                "𝕳𝖊𝖑𝖑𝖔 mathematical letters",
                "𠀀𠀁𪚥 CJK extension B",
                "e\u0301 cafe\u0301 n\u0303 combining marks \u0301 alone",
                "\u1100\u1161\u11a8 Hangul jamo",
                "ＡＢＣ ｆｕｌｌ－ｗｉｄｔｈ １２３ ！？",
                "①②③ ⑴ ㈠ circled",
                "ﬁ ﬂ ligatures ㍿ ㎏ ½ ²",
                "\u3000ideographic\u3000space\u3000",
                "<s> </s> <unk> <pad> <0x0A> special-looking text",
                "▁ literal ▁▁ lower one eighth block",
                "\ufffd replacement \ufeff BOM \u200b ZWSP \u00a0 NBSP",
                "مرحبا بالعالم שלום नमस्ते สวัสดี",
                "こんにちは世界 안녕하세요 Привет мир Γειά σου",
                "1234567890 3.14159 1,000,000 0x1F",
                "我爱Java和SentencePiece！今天是2024年1月1日。",
                "「引号」『书名』《论语》——省略……",
                "a\uD800b lone high surrogate",
                "lone low surrogate \uDC00"));
    lines.add(repeatTo(longLineSeed, longBytes));
    lines.add(repeatTo("a", longBytes));
    lines.add(repeatTo(" ", 1 << 16));
    return lines;
  }

  /** {@code seed} repeated to at least {@code utf8Bytes} bytes of UTF-8. */
  static String repeatTo(String seed, int utf8Bytes) {
    int seedBytes = Math.max(1, seed.getBytes(StandardCharsets.UTF_8).length);
    return seed.repeat((utf8Bytes + seedBytes - 1) / seedBytes);
  }
}
