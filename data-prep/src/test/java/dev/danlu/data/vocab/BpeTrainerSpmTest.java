package dev.danlu.data.vocab;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.tokenizer.SentencePieceTokenizer;
import dev.danlu.testkit.Prereq;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * danlu's BPE trainer against {@code spm_train --model_type=bpe} on the same real Chinese text
 * (chinese-poetry) and flags: the piece lists and the tokens per character on held-out poems.
 */
class BpeTrainerSpmTest {
  @TempDir Path tmp;

  /** About 1.5 MB of Tang poems for training and the next file for held-out text. */
  static List<Path> poems(int trainFiles) throws IOException {
    Path dir = Prereq.cached("corpora/chinese");
    List<Path> tang;
    try (Stream<Path> s = Files.list(dir)) {
      tang =
          s.filter(p -> p.getFileName().toString().startsWith("dist_quantangshi_poet.tang."))
              .sorted()
              .limit(trainFiles + 1)
              .collect(Collectors.toList());
    }
    return tang;
  }

  static Path concat(List<Path> files, Path out) throws IOException {
    try (var o = Files.newOutputStream(out)) {
      for (Path f : files) {
        Files.copy(f, o);
      }
    }
    return out;
  }

  static double tokensPerChar(Path model, List<String> lines) throws IOException {
    try (SentencePieceTokenizer t = SentencePieceTokenizer.load(model)) {
      long tokens = 0;
      long chars = 0;
      for (String l : lines) {
        tokens += t.encode(l).length;
        chars += l.codePointCount(0, l.length());
      }
      return tokens / (double) chars;
    }
  }

  @Test
  void samePiecesAsSpmTrainOnChinesePoetry() throws Exception {
    SpmTrain.assumeInstalled();
    List<Path> files = poems(5);
    List<Path> train = files.subList(0, files.size() - 1);
    Path input = concat(train, tmp.resolve("train.txt"));
    BpeSpec spec = BpeSpec.defaults(6000).withNormalization("identity");
    long t0 = System.nanoTime();
    byte[] ours = SpmTrain.trainLocal(List.of(input), spec);
    long t1 = System.nanoTime();
    Path ref = SpmTrain.train(input, spec, tmp);
    long t2 = System.nanoTime();
    Files.write(tmp.resolve("ours.model"), ours);
    List<String> a = SpmTrain.pieces(ours);
    List<String> b = SpmTrain.pieces(Files.readAllBytes(ref));
    assertEquals(b.size(), a.size());
    int samePrefix = 0;
    while (samePrefix < a.size() && a.get(samePrefix).equals(b.get(samePrefix))) {
      samePrefix++;
    }
    Set<String> common = new HashSet<>(a);
    common.retainAll(new HashSet<>(b));
    List<String> held = Files.readAllLines(files.get(files.size() - 1), StandardCharsets.UTF_8);
    double tpcOurs = tokensPerChar(tmp.resolve("ours.model"), held);
    double tpcRef = tokensPerChar(ref, held);
    System.out.printf(
        "vocab train vs spm_train: %d pieces, identical prefix %d, common %d, tokens/char %.5f vs"
            + " %.5f; %.1fs vs %.1fs%n",
        a.size(), samePrefix, common.size(), tpcOurs, tpcRef, (t1 - t0) / 1e9, (t2 - t1) / 1e9);
    List<String> diff = new ArrayList<>();
    for (int i = 0; i < a.size() && diff.size() < 10; i++) {
      if (!a.get(i).equals(b.get(i))) {
        diff.add(i + ":" + a.get(i) + "/" + b.get(i));
      }
    }
    System.out.println("first differences (ours/spm): " + diff);
    assertEquals(b, a, "piece lists differ");
    var ma = dev.danlu.data.tokenizer.SentencePieceModel.parse(ours, "ours");
    var mb = dev.danlu.data.tokenizer.SentencePieceModel.parse(Files.readAllBytes(ref), "spm");
    for (int i = 0; i < ma.size(); i++) {
      assertEquals(mb.score(i), ma.score(i), "score of " + a.get(i));
      assertEquals(mb.type(i), ma.type(i), "type of " + a.get(i));
    }
    assertTrue(Math.abs(tpcOurs / tpcRef - 1) < 0.005);
  }
}
