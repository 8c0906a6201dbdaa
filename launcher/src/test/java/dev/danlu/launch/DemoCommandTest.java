package dev.danlu.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.manifest.ManifestIo;
import dev.danlu.launch.demo.DemoCorpus;
import dev.danlu.launch.demo.StageTable;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The demo end to end, as {@code bin/danlu demo} runs it (about a minute on 2 idle cores, longer
 * with training), then once more to check that a re-run reuses what is done.
 */
class DemoCommandTest {
  @TempDir Path tmp;

  @Test
  void wholePipelineProducesItsOutputsAndReusesThemOnReRun() throws Exception {
    Path repo = DemoCommand.repoDir();
    try {
      DemoCorpus.ensure(repo, DemoCorpus.cacheDir(), System.out);
    } catch (IOException e) {
      Assumptions.abort(
          dev.danlu.testkit.Prereq.SETUP
              + " demo corpus unavailable and cannot be fetched: "
              + e.getMessage());
    }
    Path work = tmp.resolve("demo");
    ByteArrayOutputStream console = new ByteArrayOutputStream();
    DemoCommand.Report r = DemoCommand.execute(repo, work, false, tee(console));
    String text = console.toString(StandardCharsets.UTF_8);

    assertEquals(0, r.exitCode(), text);
    assertTrue(Files.list(work.resolve("corpus")).findAny().isPresent());
    for (String f : new String[] {"config.json", "model.safetensors", "tokenizer.model"}) {
      assertTrue(Files.isRegularFile(work.resolve("tiny-llama").resolve(f)), f);
    }
    assertEquals(1, ManifestIo.readCurrent(work.resolve("shards")).version());
    // a random N(0, 0.02) model is close to uniform over the 32000 pieces: loss ≈ ln(32000)
    assertEquals(Math.log(32000), r.baseLoss(), 0.05, "untrained validation loss");
    assertNotNull(r.sample());
    assertTrue(r.sample().startsWith(DemoCommand.PROMPT), r.sample());
    assertTrue(text.contains("summary"), text);
    Map<String, String> status = statuses(r.table());
    assertTrue(Files.isRegularFile(work.resolve("output/pt_lora_model/adapter_model.safetensors")));
    assertEquals("done", status.get("train"));
    // the Alpaca-2 path: instruction data, SFT on the pretraining adapter, merge, one answer
    for (String stage : new String[] {"sft data", "sft", "merge", "chat"}) {
      assertEquals("done", status.get(stage), stage + "\n" + text);
    }
    assertTrue(
        Files.isRegularFile(work.resolve("sft-output/sft_lora_model/adapter_model.safetensors")));
    assertTrue(Files.isRegularFile(work.resolve("merged/config.json")));
    assertTrue(text.contains("danlu demo: answer of the merged SFT model: "), text);
    assertTrue(
        r.trainedLoss() < r.baseLoss() - 0.5,
        "validation loss after training " + r.trainedLoss() + " vs before " + r.baseLoss());

    // re-run: the model and corpus are reused as they are; prep commits no new version
    Path weights = work.resolve("tiny-llama/model.safetensors");
    FileTime before = Files.getLastModifiedTime(weights);
    DemoCommand.Report again = DemoCommand.execute(repo, work, false, tee(console));
    assertEquals(0, again.exitCode());
    Map<String, String> second = statuses(again.table());
    assertEquals("reused", second.get("tiny model"));
    assertEquals("up to date", second.get("prep"));
    assertEquals("up to date", second.get("sft data"), "same records: prep-sft commits nothing");
    assertEquals("reused", second.get("perplexity"), "same model, data and adapter bytes");
    assertEquals(before, Files.getLastModifiedTime(weights));
    assertEquals(1, ManifestIo.readCurrent(work.resolve("shards")).version());
    assertEquals(r.baseLoss(), again.baseLoss(), 1e-9);
    assertEquals(r.trainedLoss(), again.trainedLoss(), 1e-6, "training resumed at its end");
  }

  @Test
  void freshRefusesToDeleteADirectoryTheDemoDidNotMake() throws Exception {
    Path other = tmp.resolve("someone-elses");
    Files.createDirectories(other);
    Files.writeString(other.resolve("precious.txt"), "keep me");
    IOException e =
        assertThrows(
            IOException.class,
            () -> DemoCommand.execute(DemoCommand.repoDir(), other, true, System.out));
    assertTrue(e.getMessage().contains("refusing"), e.getMessage());
    assertTrue(Files.isRegularFile(other.resolve("precious.txt")));
  }

  @Test
  void unknownArgumentIsAUsageError() throws Exception {
    assertEquals(2, DemoCommand.run(new String[] {"--bogus"}));
  }

  private static Map<String, String> statuses(StageTable t) {
    return t.rows().stream()
        .collect(Collectors.toMap(StageTable.Row::stage, StageTable.Row::status));
  }

  /** Prints to the test log and keeps a copy for assertions. */
  private static PrintStream tee(ByteArrayOutputStream copy) {
    OutputStream both =
        new OutputStream() {
          @Override
          public void write(int b) {
            System.out.write(b);
            copy.write(b);
          }

          @Override
          public void write(byte[] b, int off, int len) {
            System.out.write(b, off, len);
            copy.write(b, off, len);
          }
        };
    return new PrintStream(both, true, StandardCharsets.UTF_8);
  }
}
