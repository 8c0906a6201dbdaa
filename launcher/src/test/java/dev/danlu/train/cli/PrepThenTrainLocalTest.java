package dev.danlu.train.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import dev.danlu.jobs.prep.PrepCli;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * End to end without hand-made data: the Spark prep job (local[2]) turns real English text into
 * shards with the stories260K tokenizer, then {@code train-local} trains the stories260K model on
 * them with 2 worker processes; the run completes, evaluates on the prepared validation split and
 * its loss falls. (Lives in the launcher module, the one that sees both Spark and the trainer.)
 */
class PrepThenTrainLocalTest {
  @TempDir Path tmp;

  @Test
  void shardsFromThePrepJobTrainEndToEnd() throws Exception {
    Path model = dev.danlu.testkit.Prereq.shared("fixtures/stories260K");
    Path english = dev.danlu.testkit.Prereq.cached("corpora/english");
    Path input = Files.createDirectories(tmp.resolve("corpus"));
    try (Stream<Path> s = Files.list(english)) {
      for (Path f : s.filter(p -> p.toString().endsWith(".txt")).sorted().limit(4).toList()) {
        Files.copy(f, input.resolve(f.getFileName()));
      }
    }
    Path tok = model.resolve("tokenizer.model");
    Path data = tmp.resolve("shards");
    int prep =
        PrepCli.run(
            new String[] {
              "--input",
              input.toString(),
              "--tokenizer",
              tok.toString(),
              "--block-size",
              "64",
              "--output",
              data.toString(),
              "--master",
              "local[2]",
              "--validation-fraction",
              "0.05",
              "--chunking",
              "file"
            });
    assertEquals(0, prep);
    Manifest m = ManifestIo.readCurrent(data);
    assertTrue(m.totals().trainBlocks() >= 200, "only " + m.totals().trainBlocks() + " blocks");
    assertTrue(m.totals().validationBlocks() > 0, m.totals().toString());

    Path yaml = tmp.resolve("run.yaml");
    Files.writeString(
        yaml,
        String.join(
            "\n",
            "model_name_or_path: " + model,
            "tokenizer_name_or_path: " + tok,
            "dataset_dir: " + data,
            "output_dir: " + tmp.resolve("out"),
            "max_steps: 20",
            "per_device_train_batch_size: 2",
            "gradient_accumulation_steps: 1",
            "learning_rate: 5.0e-3",
            "lora_rank: 8",
            "lora_alpha: 16",
            "modules_to_save: embed_tokens,lm_head",
            "logging_steps: 1",
            "save_steps: 10",
            "eval_steps: 20",
            ""));
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    int rc =
        TrainLocalCli.run(
            new String[] {"--config", yaml.toString(), "--nproc", "2"},
            Map.of(),
            new PrintStream(log, true, StandardCharsets.UTF_8));
    String out = log.toString(StandardCharsets.UTF_8);
    assertEquals(0, rc, out);
    List<Double> losses = new ArrayList<>();
    Matcher mm = Pattern.compile("\\[rank 0\\] step \\d+/20 loss ([0-9.]+)").matcher(out);
    while (mm.find()) {
      losses.add(Double.parseDouble(mm.group(1)));
    }
    assertEquals(20, losses.size(), out);
    double first = losses.subList(0, 5).stream().mapToDouble(d -> d).average().orElseThrow();
    double last = losses.subList(15, 20).stream().mapToDouble(d -> d).average().orElseThrow();
    System.out.printf(
        "prep (%d train / %d validation blocks) + train-local 2 ranks: loss %.4f -> %.4f%n",
        m.totals().trainBlocks(), m.totals().validationBlocks(), first, last);
    assertTrue(last < first, "loss did not fall: " + first + " -> " + last + "\n" + out);
    assertTrue(out.contains("eval step 20: eval_loss"), out);
    assertTrue(Files.exists(tmp.resolve("out/pt_lora_model/adapter_config.json")));
  }
}
