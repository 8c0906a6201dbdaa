package dev.danlu.train.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.lora.PeftBridge;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.LlamaWeights;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/** {@code danlu generate} end to end on the real stories260K model. */
class GenerateCliTest {
  @TempDir Path tmp;

  static Path model() {
    return dev.danlu.testkit.Prereq.shared("fixtures/stories260K");
  }

  static String[] run(String... args) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int rc =
        GenerateCli.run(
            args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true));
    return new String[] {
      String.valueOf(rc), out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8)
    };
  }

  @Test
  void emptyPromptGreedyPrintsLlama2cText() throws Exception {
    Path m = model();
    String[] r = run("--model", m.toString(), "--prompt", "", "--max-new-tokens", "256");
    assertEquals("0", r[0], r[2]);
    assertEquals(Files.readString(m.resolve("expected-greedy-from-bos.txt")), r[1]);
    assertTrue(r[2].contains("tokens/s"), r[2]);
  }

  @Test
  void promptIsEchoedAndContinued() throws Exception {
    String[] r =
        run("--model", model().toString(), "--prompt", "Lily saw a cat", "--max-new-tokens", "20");
    assertEquals("0", r[0], r[2]);
    assertTrue(r[1].startsWith("Lily saw a cat"), r[1]);
    assertTrue(r[1].length() > "Lily saw a cat\n".length(), r[1]);
  }

  @Test
  void samplingIsReproducibleWithASeed() throws Exception {
    String m = model().toString();
    String[] a =
        run(
            "--model",
            m,
            "--prompt",
            "Tom",
            "--max-new-tokens",
            "30",
            "--temperature",
            "0.9",
            "--seed",
            "5");
    String[] b =
        run(
            "--model",
            m,
            "--prompt",
            "Tom",
            "--max-new-tokens",
            "30",
            "--temperature",
            "0.9",
            "--seed",
            "5");
    assertEquals(a[1], b[1]);
  }

  @Test
  void freshAdapterGivesTheBaseText() throws Exception {
    Path m = model();
    LlamaWeights w = HfLlama.load(m, DataType.FLOAT);
    LoraAdapter ad =
        LoraAdapter.init(new LoraConfig(4, 8, 0.05, LoraConfig.allTargets(), false, false, 1), w);
    Path dir = tmp.resolve("adapter");
    PeftBridge.toPeft(ad, m.toString()).save(dir);
    String[] base = run("--model", m.toString(), "--prompt", "The dog", "--max-new-tokens", "40");
    String[] adapted =
        run(
            "--model",
            m.toString(),
            "--adapter",
            dir.toString(),
            "--prompt",
            "The dog",
            "--max-new-tokens",
            "40");
    assertEquals("0", adapted[0], adapted[2]);
    assertEquals(base[1], adapted[1]);
    assertTrue(adapted[2].contains("merged adapter"), adapted[2]);
  }

  @Test
  void zeroNewTokensEchoesThePrompt() throws Exception {
    String[] r =
        run("--model", model().toString(), "--prompt", "Once upon", "--max-new-tokens", "0");
    assertEquals("0", r[0], r[2]);
    assertEquals("Once upon\n", r[1]);
  }

  @Test
  void missingOptionsAreUsageErrors() throws Exception {
    String[] r = run("--prompt", "x");
    assertEquals("2", r[0]);
    assertTrue(r[2].contains("--model"), r[2]);
    r = run("--model", "/nonexistent", "--prompt", "x", "--max-new-tokens", "abc");
    assertEquals("2", r[0]);
    assertTrue(
        r[2].contains("Invalid value for option '--max-new-tokens': 'abc' is not a whole number"),
        r[2]);
    r = run("--model", "/nonexistent", "--prompt", "x", "--max-new-tokens", "1", "--top-q", "4");
    assertEquals("2", r[0]);
    assertTrue(r[2].startsWith("danlu generate: Unknown option"), r[2]);
    assertTrue(r[2].lines().findFirst().orElseThrow().contains("'--top-q'"), r[2]);
    assertTrue(r[2].contains("Usage: danlu generate"), r[2]);
  }

  @Test
  void helpGoesToStdout() throws Exception {
    String[] r = run("--help");
    assertEquals("0", r[0], r[2]);
    assertTrue(r[1].startsWith("Usage: danlu generate"), r[1]);
    assertTrue(r[1].contains("--torch-dtype"), r[1]);
    assertEquals("", r[2]);
  }

  @Test
  void aPromptMayStartWithADash() throws Exception {
    String[] r = run("--model", model().toString(), "--prompt", "-- Lily", "--max-new-tokens", "0");
    assertEquals("0", r[0], r[2]);
    assertEquals("-- Lily\n", r[1]);
  }

  /** A truncated download: one clear line and exit 1, the stack trace only with --verbose. */
  @Test
  void truncatedSafetensorsIsOneLineWithoutAStackTrace() throws Exception {
    Path m = model();
    Path dir = Files.createDirectories(tmp.resolve("truncated"));
    for (String f : new String[] {"config.json", "tokenizer.model"}) {
      Files.copy(m.resolve(f), dir.resolve(f));
    }
    byte[] all = Files.readAllBytes(m.resolve("model.safetensors"));
    Files.write(dir.resolve("model.safetensors"), Arrays.copyOf(all, all.length / 2));
    String[] args = {"--model", dir.toString(), "--prompt", "x", "--max-new-tokens", "4"};
    String[] r = run(args);
    assertEquals("1", r[0], r[2]);
    assertTrue(r[2].startsWith("danlu generate: " + dir.resolve("model.safetensors")), r[2]);
    assertTrue(r[2].contains("truncated"), r[2]);
    assertEquals(1, r[2].strip().lines().count(), r[2]);
    assertFalse(r[2].contains("Exception in thread") || r[2].contains("\tat "), r[2]);
    assertEquals("", r[1]);

    String[] verbose = new String[args.length + 1];
    System.arraycopy(args, 0, verbose, 0, args.length);
    verbose[args.length] = "--verbose";
    r = run(verbose);
    assertEquals("1", r[0], r[2]);
    assertTrue(r[2].startsWith("danlu generate: " + dir.resolve("model.safetensors")), r[2]);
    assertTrue(r[2].contains("java.io.IOException") && r[2].contains("\tat "), r[2]);
  }
}
