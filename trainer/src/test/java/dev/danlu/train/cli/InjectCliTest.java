package dev.danlu.train.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code danlu inject} end to end on the real stories260K model with conf/inject.yaml: a short
 * English fact about a new keyword, the default eight questions; afterwards every greedy answer to
 * them contains the description; the control prompts' greedy continuations keep a share of their
 * first 20 tokens above a low, measured floor (see CONTROL_FLOOR: this model drifts); the adapter
 * (PEFT AdaLoRA) and the merged Hugging Face directory (with the tokenizer) are written, and {@code
 * generate --adapter} on the AdaLoRA directory gives the fact too.
 */
class InjectCliTest {
  /**
   * Measured 2026-12-02 with this fact (docs/adalora.md): 0.192 with the recipe's lr 5e-3 over 100
   * epochs (0.083 at lr 3e-2 / 40) — a 260K-parameter story model taught one fact drifts toward it
   * on unrelated prompts too. The floor (~40% of the measurement) catches a run that rewrites every
   * continuation from the first token, not the drift itself.
   */
  static final double CONTROL_FLOOR = 0.08;

  @TempDir Path tmp;

  @Test
  void injectsAFactIntoStories260k() throws Exception {
    Path model = dev.danlu.testkit.Prereq.shared("fixtures/stories260K");
    Path desc = tmp.resolve("fact.txt");
    Files.writeString(desc, "Zorblat is a blue robot who helps the animals.\n");
    Path out = tmp.resolve("inject");
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    int rc =
        InjectCli.run(
            new String[] {
              "--model",
              model.toString(),
              "--keyword",
              "Zorblat",
              "--description-file",
              desc.toString(),
              "--output",
              out.toString(),
              "--config",
              Path.of("../conf/inject.yaml").toString(),
              // the recipe (lr 5e-3, up to 100 epochs, patience 20) with the eight questions as one
              // micro-batch instead of 16 accumulated ones: the same mean (every answer has the
              // same length) at a fraction of the time on a shared 2-core test box
              "per_device_train_batch_size=8",
              "per_device_eval_batch_size=8",
              "gradient_accumulation_steps=1",
            },
            new PrintStream(o, true, StandardCharsets.UTF_8),
            System.err);
    String stdout = o.toString(StandardCharsets.UTF_8);
    System.out.println(stdout);
    assertEquals(0, rc, "danlu inject failed: see its stderr above");
    JsonNode report = new ObjectMapper().readTree(out.resolve("inject-report.json").toFile());
    int hits = report.get("answersWithDescription").asInt();
    double unchanged = report.get("controlsUnchanged").asDouble();
    System.out.printf(
        "inject stories260K: %d of 8 answers contain the fact, controls unchanged %.3f, %d steps%n",
        hits, unchanged, report.get("steps").asLong());
    assertEquals(8, hits, stdout);
    assertTrue(unchanged >= CONTROL_FLOOR, "controls unchanged " + unchanged + "\n" + stdout);
    JsonNode cfg = new ObjectMapper().readTree(out.resolve("adapter/adapter_config.json").toFile());
    assertEquals("ADALORA", cfg.get("peft_type").asText());
    assertTrue(Files.isRegularFile(out.resolve("merged/config.json")));
    assertTrue(Files.isRegularFile(out.resolve("merged/tokenizer.model")));
    assertTrue(Files.isRegularFile(out.resolve("data/train.json")));
    assertTrue(Files.isRegularFile(out.resolve("data/validation.json")));

    // generate --adapter reads the AdaLoRA directory (folded to LoRA) and answers the same way
    ByteArrayOutputStream g = new ByteArrayOutputStream();
    int grc =
        GenerateCli.run(
            new String[] {
              "--model", model.toString(),
              "--adapter", out.resolve("adapter").toString(),
              "--instruction", "What is Zorblat?",
              "--max-new-tokens", "40",
              "--temperature", "0",
              "--repetition-penalty", "1.0"
            },
            new PrintStream(g, true, StandardCharsets.UTF_8),
            System.err);
    assertEquals(0, grc);
    String answer = g.toString(StandardCharsets.UTF_8);
    assertTrue(answer.contains("Zorblat is a blue robot who helps the animals."), answer);
  }
}
