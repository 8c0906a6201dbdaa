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
    assertTrue(err.toString(StandardCharsets.UTF_8).contains("--block-size must be positive"));
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
    assertTrue(err.toString(StandardCharsets.UTF_8).contains("unknown chunking mode 'lines'"));
    err.reset();
    assertEquals(2, run(err, "--input", "x"));
    assertTrue(err.toString(StandardCharsets.UTF_8).contains("are required"));
    assertTrue(err.toString(StandardCharsets.UTF_8).contains("usage: danlu prep"));
  }
}
