package dev.danlu.jobs.prep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Command-line errors are caught before Spark starts. */
class PrepCliTest {
  @TempDir Path tmp;

  static int run(ByteArrayOutputStream err, String... args) throws Exception {
    return PrepCli.run(
        args,
        new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
  }

  @Test
  void missingTokenizerFailsBeforeSparkStarts() throws Exception {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    Path tok = tmp.resolve("nope/tokenizer.model");
    int code =
        run(
            err,
            "--input",
            tmp.toString(),
            "--tokenizer",
            tok.toString(),
            "--block-size",
            "512",
            "--output",
            tmp.resolve("o").toString());
    assertEquals(1, code);
    String msg = err.toString(StandardCharsets.UTF_8);
    assertTrue(msg.contains(tok.toString()) && msg.contains("does not exist"), msg);
    assertTrue(
        SparkSession.getActiveSession().isEmpty() && SparkSession.getDefaultSession().isEmpty());
  }

  @Test
  void usageErrorsNameTheFlag() throws Exception {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    assertEquals(2, run(err, "--input", "x", "--block-size", "-3"));
    String m = err.toString(StandardCharsets.UTF_8);
    assertTrue(m.contains("option '--block-size': '-3' is not a whole number ≥ 1"), m);
    err.reset();
    assertEquals(
        2,
        run(
            err,
            "--input",
            "x",
            "--tokenizer",
            "t",
            "--block-size",
            "8",
            "--output",
            "o",
            "--chunking",
            "lines"));
    m = err.toString(StandardCharsets.UTF_8);
    assertTrue(m.contains("'--chunking'") && m.contains("unknown chunking mode 'lines'"), m);
    err.reset();
    assertEquals(2, run(err, "--input", "x"));
    m = err.toString(StandardCharsets.UTF_8);
    assertTrue(m.startsWith("danlu prep: Missing required options:"), m);
    assertTrue(m.contains("'--tokenizer=") && m.contains("'--output="), m);
    assertTrue(m.contains("Usage: danlu prep"), m);
    err.reset();
    assertEquals(2, run(err, "--input", "x", "--tokenizer", "t", "--output", "o", "--block-size"));
    m = err.toString(StandardCharsets.UTF_8);
    assertTrue(m.contains("Missing required parameter for option '--block-size'"), m);
  }

  @Test
  void programmaticParseUsesTheSameRules() {
    PrepOptions o =
        PrepOptions.parse(
            new String[] {
              "--input",
              "in",
              "--tokenizer",
              "t",
              "--block-size",
              "64",
              "--output",
              "o",
              "--split-size-mb",
              "0.5",
              "--dry-run",
              "--keep-versions",
              "2",
              "--utf8",
              "fail"
            });
    assertEquals(64, o.blockSize());
    assertEquals(1 << 19, o.splitBytes());
    assertTrue(o.dryRun());
    assertEquals(2, o.keepVersions());
    assertEquals("fail", o.utf8());
    assertEquals(256L << 20, o.shardBytes());
    IllegalArgumentException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            IllegalArgumentException.class,
            () -> PrepOptions.parse(new String[] {"--input", "in", "--validation-fraction", "1"}));
    assertTrue(e.getMessage().contains("--validation-fraction"), e.getMessage());
  }
}
