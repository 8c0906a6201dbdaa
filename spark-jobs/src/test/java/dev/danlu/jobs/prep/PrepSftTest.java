package dev.danlu.jobs.prep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.manifest.ManifestIo;
import dev.danlu.data.sft.SftCounts;
import dev.danlu.data.sft.SftExampleBuilder;
import dev.danlu.data.sft.SftExamples;
import dev.danlu.data.sft.SftManifest;
import dev.danlu.data.sft.SftRecord;
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

/** prep-sft end to end on local[2]: a JSON array and a JSON lines file, report, shards, re-run. */
class PrepSftTest {
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

  /** The records of the test input: a.json (array), then b.jsonl; the bad line is b.jsonl:3. */
  static List<SftRecord> write(Path in, boolean withBad) throws IOException {
    Files.createDirectories(in.resolve("sub"));
    List<SftRecord> recs = new ArrayList<>();
    recs.add(new SftRecord("给出三个保持健康的秘诀。", "", "1. 均衡饮食\n2. 锻炼"));
    recs.add(new SftRecord("Translate", "你好", "Hello"));
    recs.add(new SftRecord(LONG, "", "masked: the prompt is longer than L"));
    recs.add(new SftRecord("写一首诗", null, "床前明月光，疑是地上霜。".repeat(20)));
    Files.writeString(
        in.resolve("a.json"),
        "[{\"instruction\":\"给出三个保持健康的秘诀。\",\"input\":\"\",\"output\":\"1. 均衡饮食\\n2. 锻炼\"},\n"
            + "{\"instruction\":\"Translate\",\"input\":\"你好\",\"output\":\"Hello\"},\n"
            + "{\"instruction\":\""
            + LONG
            + "\",\"output\":\"masked: the prompt is longer than L\"},\n"
            + "{\"instruction\":\"写一首诗\",\"input\":null,\"output\":\""
            + "床前明月光，疑是地上霜。".repeat(20)
            + "\"}]\n");
    for (int i = 0; i < 6; i++) {
      recs.add(new SftRecord("问题 " + i, i % 2 == 0 ? "" : "上下文 " + i, "回答 " + i));
    }
    StringBuilder jl = new StringBuilder();
    for (int i = 0; i < 6; i++) {
      SftRecord r = recs.get(4 + i);
      jl.append(
              String.format(
                  "{\"instruction\":\"%s\",\"input\":\"%s\",\"output\":\"%s\"}",
                  r.instruction(), r.input(), r.output()))
          .append('\n');
      if (i == 1 && withBad) {
        jl.append("{\"instruction\":\"no output\"}\n");
      }
    }
    Files.writeString(in.resolve("sub/b.jsonl"), jl.toString());
    Files.writeString(in.resolve("notes.txt"), "not instruction data");
    return recs;
  }

  PrepSftJob.Report run(StringBuilder log, String... args) throws IOException {
    PrepSftJob.Options o = PrepSftCli.parse(args);
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
  void endToEndWithSkippedBadRecordAndRerun() throws Exception {
    Path model = PrepTestSupport.chineseModel();
    Path in = tmp.resolve("in");
    Path out = tmp.resolve("out");
    List<SftRecord> recs = write(in, true);
    int maxLen = 64;
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
      "0.3",
      "--skip-bad-records"
    };
    StringBuilder log = new StringBuilder();
    PrepSftJob.Report r = run(log, args);
    assertTrue(r.committed());
    SftManifest m = r.manifest();
    assertEquals(2, m.sources().size());
    SftCounts a = m.sources().get(0).counts();
    SftCounts b = m.sources().get(1).counts();
    assertTrue(m.sources().get(0).path().endsWith("a.json"));
    assertEquals(new SftCounts(4, 3, 1, 1, 0), a); // the poem is cut, the long prompt dropped
    assertEquals(new SftCounts(7, 6, 0, 0, 1), b);
    assertTrue(
        m.sources().get(1).badRecords().get(0).contains("b.jsonl: line 3: missing \"output\""));
    assertTrue(log.toString().contains("prep-sft: total: 11 records read, 9 kept"), log.toString());
    assertTrue(log.toString().contains("1 dropped fully masked"), log.toString());

    // the shards hold exactly the builder's examples, split between train and validation
    List<String> expected = new ArrayList<>();
    try (TextTokenizer tok = TextTokenizer.load(model)) {
      SftExampleBuilder builder = new SftExampleBuilder(tok, maxLen);
      for (SftRecord rec : recs) {
        SftExampleBuilder.Built bt = builder.build(rec);
        if (!bt.fullyMasked()) {
          expected.add(key(bt.example()));
        }
      }
      assertEquals(SftShards.padId(out), tok.padId());
    }
    List<String> got = new ArrayList<>();
    long trainRows;
    try (SftExamples train = SftShards.open(out, "train", null);
        SftExamples val = SftShards.open(out, "validation", null)) {
      trainRows = train.rows();
      for (long i = 0; i < train.rows(); i++) {
        got.add(key(train.read(i)));
      }
      for (long i = 0; i < val.rows(); i++) {
        got.add(key(val.read(i)));
      }
      assertEquals(m.validationRows(), val.rows());
    }
    assertEquals(m.trainRows(), trainRows);
    expected.sort(null);
    got.sort(null);
    assertEquals(expected, got);
    assertEquals(64, SftShards.maxSeqLength(out));

    // unchanged input: nothing committed; a changed file is re-tokenized alone
    StringBuilder log2 = new StringBuilder();
    PrepSftJob.Report r2 = run(log2, args);
    assertFalse(r2.committed());
    assertTrue(log2.toString().contains("2 unchanged, reused; 0 to tokenize"), log2.toString());
    Files.writeString(in.resolve("sub/b.jsonl"), "{\"instruction\":\"新\",\"output\":\"的\"}\n");
    PrepSftJob.Report r3 = run(new StringBuilder(), args);
    assertTrue(r3.committed());
    assertEquals(2, r3.manifest().version());
    assertEquals(4, r3.manifest().totals().kept());
  }

  @Test
  void badRecordFailsNamingFileAndLineAndCommitsNothing() throws Exception {
    Path model = PrepTestSupport.chineseModel();
    Path in = tmp.resolve("in");
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
                    "512",
                    "--output",
                    out.toString()));
    assertTrue(e.getMessage().contains("nothing committed"), e.getMessage());
    assertTrue(e.getMessage().contains("b.jsonl: line 3: missing \"output\""), e.getMessage());
    assertTrue(e.getMessage().contains("--skip-bad-records"), e.getMessage());
    assertFalse(Files.exists(out.resolve(ManifestIo.CURRENT)));
  }

  @Test
  void validationFileGoesWhollyToValidation() throws Exception {
    Path model = PrepTestSupport.chineseModel();
    Path in = tmp.resolve("in");
    write(in, false);
    Path valFile = tmp.resolve("dev.jsonl");
    Files.writeString(
        valFile,
        "{\"instruction\":\"一\",\"output\":\"二\"}\n{\"instruction\":\"三\",\"output\":\"四\"}\n");
    Path out = tmp.resolve("out");
    PrepSftJob.Report r =
        run(
            new StringBuilder(),
            "--input",
            in.toString(),
            "--tokenizer",
            model.toString(),
            "--max-seq-length",
            "512",
            "--output",
            out.toString(),
            "--validation-file",
            valFile.toString());
    assertEquals(2, r.manifest().validationRows());
    assertEquals(10, r.manifest().trainRows());
    try (SftExamples val = SftShards.open(out, "validation", null)) {
      assertEquals(2, val.rows());
    }
  }

  @Test
  void cliRefusesBothValidationOptions() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                PrepSftCli.parse(
                    new String[] {
                      "--input",
                      "i",
                      "--tokenizer",
                      "t",
                      "--max-seq-length",
                      "8",
                      "--output",
                      "o",
                      "--validation-file",
                      "v",
                      "--validation-fraction",
                      "0.1"
                    }));
    assertTrue(e.getMessage().contains("mutually exclusive"), e.getMessage());
  }

  private static String key(SftExamples.Example e) {
    return Arrays.toString(e.inputIds()) + "/" + Arrays.toString(e.labels());
  }
}
