package dev.danlu.data.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** The behaviour every subcommand gets from {@link CliSupport}, on a made-up command. */
class CliSupportTest {
  /** What {@link Probe#call()} throws, by name. */
  static final Map<String, Exception> FAILURES =
      Map.of(
          "io", new IOException("/data/x.safetensors: the file is truncated"),
          "missing", new NoSuchFileException("/data/nope.yaml"),
          "unchecked", new UncheckedIOException(new NoSuchFileException("/data/gone")),
          "arg", new IllegalArgumentException("world_size must be positive"),
          "user", new Refused("cannot start: 2 problems"),
          "bug", new IllegalStateException("an invariant broke"),
          // how Spark reports an executor's IOException to the driver
          "spark",
              new RuntimeException(
                  "Job aborted due to stage failure: Task 0 in stage 1.0 failed",
                  new IOException("corpus/a.json changed after it was listed; re-run prep-sft")));

  static final class Refused extends RuntimeException implements UserError {
    private static final long serialVersionUID = 1L;

    Refused(String message) {
      super(message);
    }
  }

  @Command(name = "probe", description = "A command for tests.")
  static final class Probe implements Callable<Integer> {
    @Option(names = "--size", required = true, converter = CliSupport.PositiveInt.class)
    int size;

    @Option(names = "--fail")
    String fail;

    @Option(names = "--text")
    String text;

    @Parameters(paramLabel = CliSupport.OVERRIDE_LABEL)
    List<String> overrides = new ArrayList<>();

    @Spec CommandSpec spec;

    final PrintStream out;

    Probe(PrintStream out) {
      this.out = out;
    }

    @Override
    public Integer call() throws Exception {
      List<String> checked = CliSupport.overrides(spec, overrides);
      if (fail != null) {
        throw FAILURES.get(fail);
      }
      out.println("size " + size + " text " + text + " overrides " + checked);
      return 0;
    }
  }

  record Run(int code, String out, String err) {}

  static Run run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
    int code =
        CliSupport.execute(
            new Probe(o), args, o, new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Run(
        code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  @Test
  void helpIsOnStdoutWithExitZero() {
    for (String h : new String[] {"--help", "-h"}) {
      Run r = run(h);
      assertEquals(0, r.code(), r.err());
      assertTrue(r.out().startsWith("Usage: danlu probe"), r.out());
      assertTrue(r.out().contains("--verbose"), r.out());
      assertEquals("", r.err());
    }
  }

  @Test
  void usageErrorsNameTheFlagThenShowTheUsage() {
    Run r = run("--size", "2", "--no-such-flag");
    assertEquals(2, r.code());
    assertTrue(r.err().startsWith("danlu probe: Unknown option: '--no-such-flag'\n"), r.err());
    assertTrue(r.err().contains("Usage: danlu probe"), r.err());
    assertTrue(r.err().contains("Run 'danlu probe --help'"), r.err());
    assertEquals("", r.out());
    // the unknown flag is named even when a required option is missing too
    r = run("--no-such-flag");
    assertTrue(r.err().startsWith("danlu probe: Unknown option: '--no-such-flag'"), r.err());
    r = run();
    assertEquals(2, r.code());
    assertTrue(r.err().startsWith("danlu probe: Missing required option: '--size"), r.err());
    r = run("--size");
    assertTrue(r.err().contains("Missing required parameter for option '--size'"), r.err());
    r = run("--size", "0");
    assertTrue(r.err().contains("option '--size': '0' is not a whole number ≥ 1"), r.err());
  }

  @Test
  void aUserErrorInsideAWrapperIsStillOneLine() {
    Run r = run("--size", "1", "--fail", "spark");
    assertEquals(1, r.code());
    assertEquals(
        "danlu probe: corpus/a.json changed after it was listed; re-run prep-sft\n", r.err());
  }

  @Test
  void anArgumentStartingWithAtIsText() throws Exception {
    java.nio.file.Path f = java.nio.file.Files.createTempFile("danlu-at", ".txt");
    try {
      java.nio.file.Files.writeString(f, "--size 9");
      Run r = run("--size", "1", "--text", "@" + f);
      assertEquals("size 1 text @" + f + " overrides []\n", r.out());
    } finally {
      java.nio.file.Files.deleteIfExists(f);
    }
  }

  @Test
  void valuesAreTheNextArgumentAndTheLastRepeatWins() {
    Run r = run("--size", "1", "--text", "-x", "--size=3", "--text", "--size");
    assertEquals(0, r.code(), r.err());
    assertEquals("size 3 text --size overrides []\n", r.out());
  }

  @Test
  void overridesArePositionalKeyValueOnly() {
    Run r = run("--size", "1", "a=1", "b.c=x=y");
    assertEquals("size 1 text null overrides [a=1, b.c=x=y]\n", r.out());
    r = run("--size", "1", "--learning_rate=1e-4");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("Unknown option: '--learning_rate=1e-4'"), r.err());
    assertTrue(r.err().contains("written key=value without dashes, e.g. learning_rate=1e-4"));
    r = run("--size", "1", "bogus");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("'bogus' is not a config override: expected key=value"), r.err());
    r = run("--size", "1", "--", "--lr=1");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("'--lr=1': config overrides are written key=value"), r.err());
  }

  @Test
  void userErrorsAreOneLineWithoutAStackTraceUnlessVerbose() {
    Map<String, String> expected =
        Map.of(
            "io", "/data/x.safetensors: the file is truncated",
            "missing", "/data/nope.yaml: no such file or directory",
            "unchecked", "/data/gone: no such file or directory",
            "arg", "world_size must be positive",
            "user", "cannot start: 2 problems");
    expected.forEach(
        (kind, message) -> {
          Run r = run("--size", "1", "--fail", kind);
          assertEquals(1, r.code(), kind);
          assertEquals("danlu probe: " + message + "\n", r.err(), kind);
          Run v = run("--size", "1", "--fail", kind, "--verbose");
          assertEquals(1, v.code(), kind);
          assertTrue(v.err().startsWith("danlu probe: " + message + "\n"), v.err());
          assertTrue(v.err().contains("\tat "), "the trace with --verbose: " + v.err());
        });
  }

  @Test
  void aBugShowsItsStackTrace() {
    Run r = run("--size", "1", "--fail", "bug");
    assertEquals(1, r.code());
    assertTrue(r.err().startsWith("danlu probe: unexpected error"), r.err());
    assertTrue(r.err().contains("IllegalStateException: an invariant broke"), r.err());
    assertTrue(r.err().contains("\tat "), r.err());
  }

  @Test
  void verboseFromTheEnvironment() {
    CommandLine cl = CliSupport.parse(new Probe(System.out), "--size", "1");
    CommandSpec spec = cl.getCommandSpec();
    assertFalse(CliSupport.verbose(spec, Map.of()));
    assertFalse(CliSupport.verbose(spec, Map.of(CliSupport.VERBOSE_ENV, "0")));
    assertTrue(CliSupport.verbose(spec, Map.of(CliSupport.VERBOSE_ENV, "1")));
  }

  @Test
  void parseReportsMistakesAsIllegalArgument() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> CliSupport.parse(new Probe(null)));
    assertTrue(e.getMessage().contains("--size"), e.getMessage());
  }
}
