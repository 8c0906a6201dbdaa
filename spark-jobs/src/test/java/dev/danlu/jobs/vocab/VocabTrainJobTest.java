package dev.danlu.jobs.vocab;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.tokenizer.SentencePieceModel;
import dev.danlu.data.vocab.BpeSpec;
import dev.danlu.data.vocab.BpeTrainer;
import dev.danlu.testkit.Prereq;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code vocab train} on Spark: task-count independence and the refusals of bad input. */
class VocabTrainJobTest {
  static JavaSparkContext sc;
  @TempDir Path tmp;
  final PrintStream out = new PrintStream(new ByteArrayOutputStream(), true);

  @BeforeAll
  static void start() {
    sc =
        new JavaSparkContext(
            new SparkConf()
                .setMaster("local[2]")
                .setAppName("VocabTrainJobTest")
                .set("spark.ui.enabled", "false"));
  }

  @AfterAll
  static void stop() {
    sc.stop();
  }

  /** Five chinese-poetry files (about 1.5 MB), copied so the corpus is a directory of its own. */
  private Path corpus() throws IOException {
    Path dir = Prereq.cached("corpora/chinese");
    Path c = Files.createDirectories(tmp.resolve("corpus"));
    try (Stream<Path> s = Files.list(dir)) {
      for (Path f :
          s.filter(p -> p.getFileName().toString().startsWith("dist_quantangshi_poet.tang."))
              .sorted()
              .limit(5)
              .collect(Collectors.toList())) {
        Files.copy(f, c.resolve(f.getFileName()));
      }
    }
    return c;
  }

  @Test
  void oneTwoAndFourTasksWriteTheSameFile() throws IOException {
    Path c = corpus();
    BpeSpec spec = BpeSpec.defaults(8000);
    byte[] one = VocabTrainJob.run(sc, List.of(c.toString()), spec, 1, out).model();
    byte[] two = VocabTrainJob.run(sc, List.of(c.toString()), spec, 2, out).model();
    byte[] four = VocabTrainJob.run(sc, List.of(c.toString()), spec, 4, out).model();
    assertArrayEquals(one, two);
    assertArrayEquals(one, four);
    SentencePieceModel m = SentencePieceModel.parse(one, "model");
    assertEquals(8000, m.size());
    assertEquals(SentencePieceModel.MODEL_BPE, m.modelType());
  }

  @Test
  void sampledLinesDoNotDependOnTheTaskCount() throws IOException {
    Path c = corpus();
    BpeSpec all = BpeSpec.defaults(7000);
    BpeSpec spec =
        new BpeSpec(
            7000,
            0.9995f,
            4192,
            16,
            true,
            true,
            false,
            false,
            List.of(),
            true,
            true,
            3000,
            7,
            "nmt_nfkc");
    VocabTrainJob.Result one = VocabTrainJob.run(sc, List.of(c.toString()), spec, 1, out);
    VocabTrainJob.Result three = VocabTrainJob.run(sc, List.of(c.toString()), spec, 3, out);
    assertArrayEquals(one.model(), three.model());
    byte[] full = VocabTrainJob.run(sc, List.of(c.toString()), all, 2, out).model();
    assertTrue(one.stats().words() < 7000, "sampled " + one.stats().words() + " words");
    assertTrue(!java.util.Arrays.equals(full, one.model()), "the sample changed nothing");
  }

  @Test
  void oneBigFileReadInByteRangesGivesTheSameModel() throws IOException {
    Path c = corpus();
    Path big = Files.createDirectories(tmp.resolve("big")).resolve("all.txt");
    try (var o = Files.newOutputStream(big)) {
      try (Stream<Path> s = Files.list(c)) {
        for (Path f : s.sorted().collect(Collectors.toList())) {
          Files.copy(f, o);
        }
      }
    }
    BpeSpec spec = BpeSpec.defaults(8000);
    byte[] dir = VocabTrainJob.run(sc, List.of(c.toString()), spec, 2, out).model();
    VocabTrainJob.Words split =
        VocabTrainJob.count(sc, List.of(big.toString()), spec, 4, 100_000, out);
    assertTrue(
        VocabTrainJob.ranges(
                    List.of(new VocabTrainJob.CorpusFile(big.toString(), "all.txt")), 4, 100_000)
                .size()
            > 10);
    assertArrayEquals(dir, VocabTrainJob.train(split, spec).model());
    // a sample keyed by byte offset: the same lines whatever the ranges and tasks
    BpeSpec sampled = spec.withVocabSize(7000);
    sampled =
        new BpeSpec(
            7000,
            0.9995f,
            4192,
            16,
            true,
            true,
            false,
            false,
            List.of(),
            true,
            true,
            3000,
            11,
            "nmt_nfkc");
    byte[] one =
        VocabTrainJob.train(
                VocabTrainJob.count(sc, List.of(big.toString()), sampled, 1, Long.MAX_VALUE, out),
                sampled)
            .model();
    byte[] many =
        VocabTrainJob.train(
                VocabTrainJob.count(sc, List.of(big.toString()), sampled, 3, 77_777, out), sampled)
            .model();
    assertArrayEquals(one, many);
  }

  @Test
  void anEmptyCorpusIsRefused() throws IOException {
    Path c = Files.createDirectories(tmp.resolve("empty"));
    Files.writeString(c.resolve("a.txt"), "\n\n   \n");
    BpeTrainer.TrainingError e =
        assertThrows(
            BpeTrainer.TrainingError.class,
            () -> VocabTrainJob.run(sc, List.of(c.toString()), BpeSpec.defaults(100), 2, out));
    assertTrue(e.getMessage().contains("no text to train on"), e.getMessage());
  }

  @Test
  void aVocabularyLargerThanTheCorpusCanFillIsRefusedWithTheLimit() throws IOException {
    Path c = Files.createDirectories(tmp.resolve("small"));
    Files.writeString(c.resolve("a.txt"), "白日依山尽\n黄河入海流\n");
    BpeTrainer.TrainingError e =
        assertThrows(
            BpeTrainer.TrainingError.class,
            () -> VocabTrainJob.run(sc, List.of(c.toString()), BpeSpec.defaults(500), 2, out));
    assertTrue(e.getMessage().contains("--vocab-size 500 is larger than"), e.getMessage());
    assertTrue(e.getMessage().matches(".*set it to a value <= \\d+$"), e.getMessage());
  }

  @Test
  void nonUtf8BytesAreReportedWithFileAndOffset() throws IOException {
    Path c = Files.createDirectories(tmp.resolve("latin1"));
    Files.writeString(c.resolve("good.txt"), "床前明月光\n");
    byte[] ok = "白日依山尽\n".getBytes(StandardCharsets.UTF_8);
    byte[] bad = new byte[ok.length + 4];
    System.arraycopy(ok, 0, bad, 0, ok.length);
    bad[ok.length] = 'a';
    bad[ok.length + 1] = (byte) 0xE9; // Latin-1 e-acute
    bad[ok.length + 2] = 'b';
    bad[ok.length + 3] = '\n';
    Files.write(c.resolve("bad.txt"), bad);
    IOException e =
        assertThrows(
            IOException.class,
            () -> VocabTrainJob.run(sc, List.of(c.toString()), BpeSpec.defaults(100), 2, out));
    String m = e.getMessage();
    assertTrue(m.contains("bad.txt") && m.contains("offset " + (ok.length + 1)), m);
    assertTrue(m.contains("not valid UTF-8"), m);
  }
}
