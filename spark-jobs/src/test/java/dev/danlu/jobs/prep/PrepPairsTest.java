package dev.danlu.jobs.prep;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.manifest.ManifestIo;
import dev.danlu.data.sft.PairRecord;
import dev.danlu.data.sft.SftCounts;
import dev.danlu.data.sft.SftExampleBuilder;
import dev.danlu.data.sft.SftExamples;
import dev.danlu.data.sft.SftManifest;
import dev.danlu.data.sft.SftShards;
import dev.danlu.data.tokenizer.TextTokenizer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * prep-pairs end to end on local[2]: both record layouts, the report, pairs as consecutive (chosen,
 * rejected) rows equal to what the SFT builder makes of each response, bad pairs.
 */
class PrepPairsTest {
  static JavaSparkContext jsc;
  @TempDir Path tmp;

  @BeforeAll
  static void start() {
    jsc = PrepTestSupport.startSpark();
  }

  @AfterAll
  static void stop() {
    if (jsc != null) {
      jsc.stop();
    }
  }

  static final String LONG = "很长的指令。".repeat(40);

  static List<PairRecord> write(Path in, boolean withIdentical) throws IOException {
    List<PairRecord> recs = new ArrayList<>();
    StringBuilder a = new StringBuilder("[");
    for (int i = 0; i < 8; i++) {
      PairRecord r = new PairRecord("问题 " + i, i % 2 == 0 ? "" : "上下文", "好的回答 " + i, "坏 " + i);
      recs.add(r);
      a.append(i > 0 ? ",\n" : "")
          .append(
              String.format(
                  "{\"instruction\":\"%s\",\"input\":\"%s\",\"chosen\":\"%s\",\"rejected\":\"%s\"}",
                  r.instruction(), r.input(), r.chosen(), r.rejected()));
    }
    Files.writeString(in.resolve("a.json"), a.append("]\n").toString());
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < 4; i++) {
      PairRecord r = new PairRecord("写 " + i, "", "床前明月光 " + i, "不知道");
      recs.add(r);
      b.append(
          String.format(
              "{\"instruction\":\"%s\",\"output\":[\"%s\",\"%s\"]}\n",
              r.instruction(), r.chosen(), r.rejected()));
    }
    recs.add(new PairRecord(LONG, "", "x", "y")); // prompt fills L: dropped
    b.append("{\"instruction\":\"" + LONG + "\",\"chosen\":\"x\",\"rejected\":\"y\"}\n");
    if (withIdentical) {
      b.append("{\"instruction\":\"q\",\"chosen\":\"same\",\"rejected\":\"same\"}\n");
    }
    Files.writeString(in.resolve("b.jsonl"), b.toString());
    return recs;
  }

  PrepSftJob.Report run(StringBuilder log, String... args) throws IOException {
    PrepSftJob.Options o = PrepPairsCli.parse(args);
    TokenizerInfo tok = TokenizerInfo.load(o.tokenizer(), jsc.hadoopConfiguration());
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    try (PrintStream console = new PrintStream(buf, true, StandardCharsets.UTF_8)) {
      return PrepSftJob.run(jsc, o, tok, console);
    } finally {
      String s = buf.toString(StandardCharsets.UTF_8);
      System.out.print(s);
      log.append(s);
    }
  }

  @Test
  void pairsBecomeConsecutiveChosenRejectedRows() throws Exception {
    Path model = PrepTestSupport.chineseModel();
    Path in = Files.createDirectories(tmp.resolve("in"));
    Path out = tmp.resolve("out");
    List<PairRecord> recs = write(in, true);
    String[] args = {
      "--input",
      in.toString(),
      "--tokenizer",
      model.toString(),
      "--max-seq-length",
      "64",
      "--output",
      out.toString(),
      "--validation-fraction",
      "0.25",
      "--skip-bad-records"
    };
    StringBuilder log = new StringBuilder();
    PrepSftJob.Report r = run(log, args);
    assertTrue(r.committed());
    SftManifest m = r.manifest();
    assertEquals(PairRecord.TEMPLATE, m.params().template());
    assertEquals(new SftCounts(8, 8, 0, 0, 0), m.sources().get(0).counts());
    assertEquals(new SftCounts(6, 4, 0, 1, 1), m.sources().get(1).counts());
    assertTrue(
        m.sources()
            .get(1)
            .badRecords()
            .get(0)
            .contains("line 6: chosen and rejected are identical"),
        m.sources().get(1).badRecords().toString());
    assertTrue(
        log.toString().contains("prep-pairs: total: 14 records read, 12 kept"), log.toString());
    assertTrue(
        log.toString().contains("prep-pairs: committed version 1: 12 pairs"), log.toString());

    // every pair is two consecutive rows of one split, exactly the SFT builder's examples
    List<String> expected = new ArrayList<>();
    try (TextTokenizer tok = TextTokenizer.load(model)) {
      SftExampleBuilder builder = new SftExampleBuilder(tok, 64);
      for (PairRecord p : recs) {
        SftExampleBuilder.Built c = builder.build(p.as(p.chosen()));
        SftExampleBuilder.Built j = builder.build(p.as(p.rejected()));
        if (!c.fullyMasked()) {
          expected.add(key(c.example()) + "/" + key(j.example()));
        }
      }
    }
    List<String> got = new ArrayList<>();
    try (SftExamples train = SftShards.open(out, "train", null);
        SftExamples val = SftShards.open(out, "validation", null)) {
      assertEquals(2 * m.trainRows(), train.rows());
      assertEquals(2 * m.validationRows(), val.rows());
      assertTrue(val.rows() > 0 && train.rows() > 0);
      for (SftExamples split : List.of(train, val)) {
        for (long i = 0; i < split.rows(); i += 2) {
          SftExamples.Example c = split.read(i);
          SftExamples.Example j = split.read(i + 1);
          int prompt = promptLength(c);
          assertEquals(prompt, promptLength(j), "one prompt per pair");
          assertArrayEquals(
              Arrays.copyOf(c.inputIds(), prompt), Arrays.copyOf(j.inputIds(), prompt));
          got.add(key(c) + "/" + key(j));
        }
      }
    }
    expected.sort(null);
    got.sort(null);
    assertEquals(expected, got);

    // unchanged input: nothing committed
    PrepSftJob.Report r2 = run(new StringBuilder(), args);
    assertFalse(r2.committed());
  }

  @Test
  void identicalResponsesFailTheRunUnlessSkipped() throws Exception {
    Path model = PrepTestSupport.chineseModel();
    Path in = Files.createDirectories(tmp.resolve("in"));
    Path out = tmp.resolve("out");
    write(in, true);
    PrepJob.PrepException e =
        assertThrows(
            PrepJob.PrepException.class,
            () ->
                run(
                    new StringBuilder(),
                    "--input",
                    in.toString(),
                    "--tokenizer",
                    model.toString(),
                    "--max-seq-length",
                    "64",
                    "--output",
                    out.toString()));
    assertTrue(e.getMessage().contains("b.jsonl: line 6: chosen and rejected are identical"));
    assertTrue(e.getMessage().contains("--skip-bad-records"), e.getMessage());
    assertFalse(Files.exists(out.resolve(ManifestIo.CURRENT)));
  }

  private static int promptLength(SftExamples.Example e) {
    int n = 0;
    while (n < e.length() && e.labels()[n] == SftExamples.IGNORE_INDEX) {
      n++;
    }
    return n;
  }

  private static String key(SftExamples.Example e) {
    return Arrays.toString(e.inputIds()) + Arrays.toString(e.labels());
  }
}
