package dev.danlu.train.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
    assertTrue(r[2].contains("--max-new-tokens expects a number"), r[2]);
  }
}
