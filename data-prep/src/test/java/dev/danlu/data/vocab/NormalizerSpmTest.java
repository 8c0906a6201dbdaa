package dev.danlu.data.vocab;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.danlu.data.tokenizer.SentencePieceModel;
import dev.danlu.data.tokenizer.SentencePieceTokenizer;
import dev.danlu.testkit.Prereq;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The nmt_nfkc and nfkc rules danlu builds from the JDK against the ones compiled into
 * sentencepiece 0.1.97 (read back from models spm_train writes).
 */
class NormalizerSpmTest {
  @TempDir Path tmp;

  /** The precompiled_charsmap of a model file. */
  static byte[] charsmapOf(byte[] model) throws IOException {
    for (Proto.Field f : Proto.fields(model, "model")) {
      if (f.number() == 3) {
        for (Proto.Field g : Proto.fields(f.payload(), "normalizer_spec")) {
          if (g.number() == 2) {
            return g.payload();
          }
        }
      }
    }
    return new byte[0];
  }

  @Test
  void rulesAsSpm() throws Exception {
    SpmTrain.assumeInstalled();
    Path input = tmp.resolve("in.txt");
    Files.writeString(input, "a tiny corpus\nfor a tiny model\n".repeat(20));
    for (String rule : List.of("nmt_nfkc", "nfkc")) {
      BpeSpec spec = BpeSpec.defaults(30).withNormalization(rule).withCharacterCoverage(1f);
      Path dir = Files.createDirectories(tmp.resolve(rule));
      Path model = SpmTrain.train(input, spec, dir);
      TreeMap<String, String> spm = Charsmap.decode(charsmapOf(Files.readAllBytes(model))).rules();
      long t0 = System.nanoTime();
      TreeMap<String, String> ours = NormalizationRules.build(rule);
      long t1 = System.nanoTime();
      TreeMap<String, String> back = Charsmap.decode(Charsmap.compile(ours)).rules();
      long t2 = System.nanoTime();
      assertEquals(ours, back, "compile/decode round trip");
      List<String> onlySpm = new ArrayList<>();
      List<String> onlyOurs = new ArrayList<>();
      List<String> differ = new ArrayList<>();
      for (Map.Entry<String, String> e : spm.entrySet()) {
        String v = ours.get(e.getKey());
        if (v == null) {
          onlySpm.add(hex(e.getKey()) + "->" + hex(e.getValue()));
        } else if (!v.equals(e.getValue())) {
          differ.add(hex(e.getKey()) + "->" + hex(e.getValue()) + "/" + hex(v));
        }
      }
      for (Map.Entry<String, String> e : ours.entrySet()) {
        if (!spm.containsKey(e.getKey())) {
          onlyOurs.add(hex(e.getKey()) + "->" + hex(e.getValue()));
        }
      }
      System.out.printf(
          "%s: spm %d rules, ours %d (built %.1fs, compiled %.1fs); only spm %d %s; only ours %d"
              + " %s; differ %d %s%n",
          rule,
          spm.size(),
          ours.size(),
          (t1 - t0) / 1e9,
          (t2 - t1) / 1e9,
          onlySpm.size(),
          onlySpm.subList(0, Math.min(40, onlySpm.size())),
          onlyOurs.size(),
          onlyOurs.subList(0, Math.min(40, onlyOurs.size())),
          differ.size(),
          differ.subList(0, Math.min(40, differ.size())));
      // The rule sets were equal with JDK 17 (Unicode 13) and sentencepiece 0.1.97: 224725
      // nmt_nfkc rules, 224682 nfkc. Another JDK's Unicode tables may add rules for newer
      // characters; this test then shows which.
      assertEquals(spm, ours, rule + " rules differ from sentencepiece 0.1.97's");
    }
  }

  /** Lines that exercise the rules: full-width, compatibility characters, odd whitespace. */
  static final List<String> ODD =
      List.of(
          "ＡＢＣ　ａｂｃ　１２３，全角：标点！？（括号）；～波浪",
          "compatibility: ﬁne ﬂow ① ② ½ ㎏ ㍿ ™ Ⅻ ｶﾀｶﾅ ﾊﾟ ㈱ 𝐁𝐨𝐥𝐝 ℌ",
          "  leading, trailing and   repeated spaces   ",
          "tab\tseparated\tcolumns and\u00a0no-break\u2003em\u3000ideographic\u2028line",
          "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom \u200eltr\u200frtl \u1680ogham",
          "control\u0001chars\u0007and\u007fdel\u008fx\u009fy \u2581lower block \ufffd",
          "combining: e\u0301 a\u0308 n\u0303 A\u030a ｅ\u0301 \u1100\u1161\u11a8 ᄀ ㄱㅏ",
          "CJK compatibility 﨑 神 琢 兀 and ⺁ ⼀ radicals",
          "Ǆ ǆ ǈ ﬀ ﬃ ﬄ ŉ ſt Å Ω K",
          "\u3000\u3000全角空格开头的行　中间　结尾\u3000",
          " \t \u00a0 ");

  static List<String> lines(Path f, int max) throws IOException {
    List<String> all = Files.readAllLines(f, StandardCharsets.UTF_8);
    return all.subList(0, Math.min(max, all.size()));
  }

  @Test
  void trainsAndEncodesAsSpmTrainWithItsDefaultRule() throws Exception {
    BpeSpec spec = BpeSpec.defaults(5000);
    assertEquals("nmt_nfkc", spec.normalization());
    List<String> held = agreeWithSpm(spec, 2, 4000);
    // spm_normalize's reading of the full-width line, checked against danlu's above
    int full = held.size() - ODD.size();
    assertEquals(
        "▁ABC▁abc▁123,全角:标点!?(括号);～波浪",
        new SpmNormalizer(Charsmap.forRule("nmt_nfkc"), true, true).normalize(held.get(full)));
  }

  @Test
  void nfkcWithoutDummyPrefixAndWithExtraSpacesKept() throws Exception {
    BpeSpec spec =
        new BpeSpec(
            4000, 0.9995f, 4192, 16, true, true, false, false, List.of(), false, false, 0, 0,
            "nfkc");
    agreeWithSpm(spec, 1, 2000);
  }

  /**
   * Trains danlu and spm_train with {@code spec} on Tang poems, Moby-Dick and {@link #ODD}, then
   * compares: the normalized held-out text (spm_normalize with either model, danlu's normalizer),
   * the pieces, and the ids spm_encode, python sentencepiece and DJL give. Returns the held-out
   * lines.
   */
  private List<String> agreeWithSpm(BpeSpec spec, int tangFiles, int englishLines)
      throws Exception {
    SpmTrain.assumeInstalled();
    Prereq.commands("sentencepiece", "spm_normalize", "spm_encode");
    Prereq.python("sentencepiece");
    List<Path> tang = BpeTrainerSpmTest.poems(3);
    Path moby = Prereq.cached("corpora/english/moby-dick.txt");
    List<String> train = new ArrayList<>();
    for (int f = 0; f < tangFiles; f++) {
      train.addAll(lines(tang.get(f), 1000));
    }
    List<String> english = lines(moby, englishLines + 2000);
    train.addAll(english.subList(0, englishLines));
    for (int i = 0; i < 5; i++) {
      train.addAll(ODD);
    }
    List<String> held = new ArrayList<>(lines(tang.get(3), 300));
    held.addAll(english.subList(englishLines, englishLines + 2000));
    held.addAll(ODD);
    Path input = tmp.resolve("train.txt");
    Files.write(input, train, StandardCharsets.UTF_8);
    Path heldFile = tmp.resolve("held.txt");
    Files.write(heldFile, held, StandardCharsets.UTF_8);

    Path ours = tmp.resolve("ours.model");
    Files.write(ours, SpmTrain.trainLocal(List.of(input), spec));
    Path ref = SpmTrain.train(input, spec, tmp);

    // Normalized text: the C++ normalizer with each model's charsmap, and danlu's.
    List<String> nOurs = spmNormalize(ours, heldFile);
    List<String> nRef = spmNormalize(ref, heldFile);
    SpmNormalizer spmNorm =
        new SpmNormalizer(
            Charsmap.forRule(spec.normalization()),
            spec.addDummyPrefix(),
            spec.removeExtraWhitespaces());
    assertEquals(held.size(), nRef.size());
    for (int i = 0; i < held.size(); i++) {
      assertEquals(nRef.get(i), nOurs.get(i), "spm_normalize of line " + i + ": " + held.get(i));
      assertEquals(nRef.get(i), spmNorm.normalize(held.get(i)), "Java normalizer, line " + i);
    }

    // The models: same pieces, scores, types.
    List<String> a = SpmTrain.pieces(Files.readAllBytes(ours));
    List<String> b = SpmTrain.pieces(Files.readAllBytes(ref));
    assertEquals(b, a, "piece lists differ");
    var ma = SentencePieceModel.parse(Files.readAllBytes(ours), "ours");
    var mb = SentencePieceModel.parse(Files.readAllBytes(ref), "spm");
    for (int i = 0; i < ma.size(); i++) {
      assertEquals(mb.score(i), ma.score(i), "score of " + a.get(i));
      assertEquals(mb.type(i), ma.type(i), "type of " + a.get(i));
    }
    assertEquals(spec.normalization(), ma.normalizerName());

    // Encoding held-out text: spm_encode, python sentencepiece and DJL give the same ids with
    // either model.
    List<String> idsRef = spmEncode(ref, heldFile);
    assertEquals(idsRef, spmEncode(ours, heldFile), "spm_encode ids");
    try (SentencePieceTokenizer t = SentencePieceTokenizer.load(ours)) {
      for (int i = 0; i < held.size(); i++) {
        String ids =
            Arrays.stream(t.encode(held.get(i)))
                .mapToObj(Integer::toString)
                .collect(Collectors.joining(" "));
        assertEquals(idsRef.get(i), ids, "DJL ids of line " + i);
      }
    }
    assertEquals(idsRef, pythonEncode(ours, heldFile), "python sentencepiece ids");
    double tpc = BpeTrainerSpmTest.tokensPerChar(ours, held);
    System.out.printf(
        "%s (dummy prefix %b, remove extra spaces %b): %d pieces identical to spm_train's,"
            + " held-out tokens/char %.5f (both)%n",
        spec.normalization(), spec.addDummyPrefix(), spec.removeExtraWhitespaces(), a.size(), tpc);
    return held;
  }

  private List<String> run(Path log, String... cmd) throws IOException, InterruptedException {
    Path out = tmp.resolve("out-" + System.nanoTime() + ".txt");
    Process p =
        new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(log.toFile()).start();
    if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
      p.destroyForcibly();
      throw new IOException(String.join(" ", cmd) + " failed: " + Files.readString(log));
    }
    return Files.readAllLines(out, StandardCharsets.UTF_8);
  }

  private List<String> spmNormalize(Path model, Path text) throws Exception {
    return run(
        tmp.resolve("norm.log"),
        "spm_normalize",
        "--model=" + model,
        "--use_internal_normalization",
        "--input=" + text);
  }

  private List<String> spmEncode(Path model, Path text) throws Exception {
    return run(
        tmp.resolve("enc.log"),
        "spm_encode",
        "--model=" + model,
        "--output_format=id",
        "--input=" + text);
  }

  private List<String> pythonEncode(Path model, Path text) throws Exception {
    return run(
        tmp.resolve("py.log"),
        "/usr/bin/python3",
        "-c",
        "import sys, sentencepiece as s\n"
            + "p = s.SentencePieceProcessor(model_file=sys.argv[1])\n"
            + "for l in open(sys.argv[2], encoding='utf-8').read().split('\\n')[:-1]:\n"
            + "    print(' '.join(map(str, p.encode(l))))\n",
        model.toString(),
        text.toString());
  }

  static String hex(String s) {
    StringBuilder sb = new StringBuilder();
    s.codePoints()
        .forEach(c -> sb.append(sb.length() == 0 ? "" : " ").append(Integer.toHexString(c)));
    return sb.toString();
  }
}
