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
 * them contains the description, the control prompts' greedy continuations keep most of their first
 * 20 tokens (floor below), and the adapter (PEFT AdaLoRA) and the merged Hugging Face directory
 * (with the tokenizer) are written.
 */
class InjectCliTest {
  /** Measured 2026-12-02 (see docs/adalora.md); the floor leaves room for other facts. */
  static final double CONTROL_FLOOR = 0.5;

  @TempDir Path tmp;

  @Test
  void injectsAFactIntoStories260k() throws Exception {
    Path model = dev.danlu.testkit.Prereq.shared("fixtures/stories260K");
    Path desc = tmp.resolve("fact.txt");
    Files.writeString(
        desc, "Zorblat is a small blue robot who lives in the forest and helps the animals.\n");
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
              // the recipe with half its compute, for a shared 2-core test box: one pass over the
              // eight questions per step, at most 40 steps
              "gradient_accumulation_steps=8",
              "num_train_epochs=40",
              "--max-new-tokens=40"
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
    assertTrue(Files.isRegularFile(out.resolve("data/inject.json")));
  }
}
