package dev.danlu.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Every subcommand behaves alike on the command line, as {@code bin/danlu} runs it. */
class CliTest {
  @TempDir Path tmp;

  static final List<String> SUBCOMMANDS =
      List.of(
          "version",
          "tokenize",
          "prep",
          "prep-sft",
          "prep-pairs",
          "train",
          "train-local",
          "worker",
          "generate",
          "score",
          "serve",
          "merge",
          "inject",
          "export-gguf",
          "inspect",
          "eval",
          "vocab",
          "demo");

  /** Every runnable command line, nested ones as "parent child". */
  static final List<String> LEAVES =
      List.of(
          "version",
          "tokenize",
          "prep",
          "prep-sft",
          "prep-pairs",
          "train",
          "train-local",
          "worker",
          "generate",
          "score",
          "serve",
          "merge",
          "inject",
          "export-gguf",
          "inspect",
          "eval ppl",
          "eval mc",
          "vocab train",
          "vocab merge",
          "demo");

  record Run(int code, String out, String err) {}

  static Run danlu(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        Main.run(
            args,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Run(
        code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  static List<String> subcommands() {
    return LEAVES;
  }

  @Test
  void everySubcommandIsRegistered() {
    ByteArrayOutputStream sink = new ByteArrayOutputStream();
    PrintStream ps = new PrintStream(sink, true, StandardCharsets.UTF_8);
    assertEquals(SUBCOMMANDS, List.copyOf(Commands.commandLine(ps, ps).getSubcommands().keySet()));
  }

  @ParameterizedTest
  @MethodSource("subcommands")
  void helpIsUsageOnStdoutWithExitZero(String sub) {
    for (String help : new String[] {"--help", "-h"}) {
      Run r = danlu(with(List.of(sub.split(" ")), help));
      assertEquals(0, r.code(), r.err());
      assertTrue(r.out().startsWith("Usage: danlu " + sub + " "), r.out());
      assertTrue(r.out().contains("--verbose"), r.out());
      assertEquals("", r.err());
    }
  }

  @ParameterizedTest
  @MethodSource("subcommands")
  void anUnknownFlagIsAUsageErrorNamingIt(String sub) {
    Run r = danlu(with(List.of(sub.split(" ")), "--no-such-flag"));
    assertEquals(2, r.code(), r.err());
    String first = r.err().lines().findFirst().orElse("");
    assertEquals("danlu " + sub + ": Unknown option: '--no-such-flag'", first, r.err());
    assertTrue(r.err().contains("Usage: danlu " + sub), r.err());
    assertEquals("", r.out());
  }

  @Test
  void topLevelHelpListsEverySubcommand() {
    Run r = danlu("--help");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().startsWith("Usage: danlu "), r.out());
    for (String sub : SUBCOMMANDS) {
      assertTrue(r.out().contains("\n  " + sub + " "), sub + " missing from:\n" + r.out());
    }
    assertEquals("", r.err());
  }

  @Test
  void noSubcommandOrAnUnknownOneIsAUsageError() {
    Run none = danlu();
    assertEquals(2, none.code());
    assertTrue(none.err().startsWith("danlu: Missing required subcommand"), none.err());
    assertTrue(none.err().contains("train-local"), none.err());
    Run typo = danlu("trian", "--config", "x.yaml");
    assertEquals(2, typo.code());
    assertTrue(typo.err().startsWith("danlu: unknown subcommand 'trian'"), typo.err());
  }

  @Test
  void versionPrintsOnStdout() {
    Run r = danlu("version");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().startsWith("danlu "), r.out());
  }

  /** Config overrides: positional key=value for train, train-local and worker alike. */
  @Test
  void overridesAreKeyValueEverywhereAndDashesAreRefusedWithAHint() {
    for (String sub : List.of("train", "train-local", "worker")) {
      List<String> base =
          sub.equals("train-local")
              ? List.of(sub, "--config", "x.yaml", "--nproc", "1")
              : List.of(sub, "--config", "x.yaml");
      Run dashed = danlu(with(base, "--learning_rate=1e-4"));
      assertEquals(2, dashed.code(), sub + ": " + dashed.err());
      assertTrue(
          dashed.err().contains("without dashes, e.g. learning_rate=1e-4"),
          sub + ": " + dashed.err());
      Run bare = danlu(with(base, "learning_rate"));
      assertEquals(2, bare.code(), sub + ": " + bare.err());
      assertTrue(
          bare.err().contains("'learning_rate' is not a config override"), sub + ": " + bare.err());
    }
  }

  /** An unknown config key for train-local names the key, before any worker starts. */
  @Test
  void trainLocalNamesAnUnknownConfigKey() throws Exception {
    Path yaml = tmp.resolve("run.yaml");
    Files.writeString(
        yaml,
        "model_name_or_path: "
            + tmp.resolve("model")
            + "\ndataset_dir: "
            + tmp.resolve("data")
            + "\noutput_dir: "
            + tmp.resolve("out")
            + "\n");
    Run r = danlu("train-local", "--config", yaml.toString(), "--nproc", "1", "lerning_rate=1");
    assertEquals(1, r.code(), r.err());
    assertTrue(r.err().startsWith("danlu train-local: "), r.err());
    assertTrue(r.err().contains("unknown key 'lerning_rate'"), r.err());
    assertFalse(r.err().contains("[rank "), r.err());
    assertFalse(r.err().contains("\tat "), r.err());
  }

  /** {@code --verbose} works before the subcommand too, and only then is there a stack trace. */
  @Test
  void generateOnATruncatedModelIsOneLineAndVerboseIsGlobal() throws Exception {
    Path fixture = dev.danlu.testkit.Prereq.shared("fixtures/stories260K");
    Path model = Files.createDirectories(tmp.resolve("truncated"));
    Files.copy(fixture.resolve("config.json"), model.resolve("config.json"));
    Files.copy(fixture.resolve("tokenizer.model"), model.resolve("tokenizer.model"));
    byte[] all = Files.readAllBytes(fixture.resolve("model.safetensors"));
    Files.write(model.resolve("model.safetensors"), Arrays.copyOf(all, all.length - 1000));
    String[] args = {
      "generate", "--model", model.toString(), "--prompt", "x", "--max-new-tokens", "3"
    };
    Run r = danlu(args);
    assertEquals(1, r.code(), r.err());
    assertTrue(
        r.err().startsWith("danlu generate: " + model.resolve("model.safetensors")), r.err());
    assertTrue(r.err().contains("truncated"), r.err());
    assertFalse(r.err().contains("Exception in thread") || r.err().contains("\tat "), r.err());

    Run v = danlu(with(List.of("--verbose"), args));
    assertEquals(1, v.code(), v.err());
    assertTrue(v.err().startsWith("danlu generate: "), v.err());
    assertTrue(v.err().contains("java.io.IOException") && v.err().contains("\tat "), v.err());
  }

  private static String[] with(List<String> head, String... tail) {
    String[] all = head.toArray(new String[head.size() + tail.length]);
    System.arraycopy(tail, 0, all, head.size(), tail.length);
    return all;
  }
}
