package dev.danlu.data.sft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.testkit.Prereq;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The Java example builder against src/test/python/sft_reference.py (python3-sentencepiece) on the
 * 2000 Chinese Alpaca records with the 55296-piece Chinese-LLaMA-2 tokenizer: every input_ids and
 * labels sequence equal, and the same records dropped as fully masked.
 */
class SftReferenceTest {
  static final Path SCRIPT = Path.of("src/test/python/sft_reference.py");

  @ParameterizedTest
  @ValueSource(ints = {512, 48, 60})
  void sameIdsAsThePythonReference(int maxSeqLength) throws Exception {
    Path data = Prereq.shared("fixtures/sft/alpaca-zh-2000.json");
    Path model = Prereq.shared("fixtures/tokenizers/chinese-llama2-tokenizer.model");
    Prereq.python("sentencepiece");
    List<String> expected = python(data, model, maxSeqLength);
    ObjectMapper json = new ObjectMapper();
    SftCounts.Tally tally = new SftCounts.Tally();
    int cutEos = 0;
    int cutTarget = 0;
    try (TextTokenizer tok = TextTokenizer.load(model);
        SftRecordReader in = SftRecordReader.open(Files.newInputStream(data), data.toString())) {
      SftExampleBuilder builder = new SftExampleBuilder(tok, maxSeqLength);
      int i = 0;
      for (SftRecordReader.Item item = in.next(); item != null; item = in.next(), i++) {
        assertTrue(!item.bad(), item.error());
        assertEquals(i, item.index());
        SftExampleBuilder.Built b = builder.build(item.record());
        SftExamples.Example e = tally.add(b, maxSeqLength);
        JsonNode ref = json.readTree(expected.get(i));
        if (ref.has("dropped")) {
          assertTrue(b.fullyMasked(), "record " + i + " is fully masked in the reference");
          continue;
        }
        assertTrue(e != null, "record " + i + " dropped, the reference keeps it");
        assertArrayEquals(ints(ref.get("input_ids")), e.inputIds(), "input_ids of record " + i);
        assertArrayEquals(ints(ref.get("labels")), e.labels(), "labels of record " + i);
        if (b.truncated(maxSeqLength)) {
          cutEos++;
          if (b.promptTokens() + b.targetTokens() - 1 > maxSeqLength) {
            cutTarget++;
          }
        }
      }
      assertEquals(expected.size(), i);
    }
    SftCounts c = tally.counts();
    System.out.printf(
        "SftReferenceTest L=%d: %s (truncated %d, of which more than the EOS cut: %d)%n",
        maxSeqLength, c, cutEos, cutTarget);
    assertEquals(2000, c.read());
    assertEquals(c.read(), c.kept() + c.droppedFullyMasked() + c.bad());
    if (maxSeqLength == 48) {
      // the system prompt alone is 38 tokens: many prompts reach 48, and kept ones lose targets
      assertTrue(c.droppedFullyMasked() > 0 && c.truncated() > 0, c.toString());
    }
  }

  private static int[] ints(JsonNode a) {
    int[] out = new int[a.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = a.get(i).intValue();
    }
    return out;
  }

  static List<String> python(Path data, Path model, int maxSeqLength)
      throws IOException, InterruptedException {
    Path out = Files.createTempFile("sft-reference-", ".jsonl");
    try {
      Process p =
          new ProcessBuilder(
                  "/usr/bin/python3",
                  SCRIPT.toString(),
                  data.toString(),
                  model.toString(),
                  Integer.toString(maxSeqLength))
              .redirectOutput(out.toFile())
              .redirectError(ProcessBuilder.Redirect.INHERIT)
              .start();
      assertTrue(p.waitFor(300, TimeUnit.SECONDS), "sft_reference.py timed out");
      assertEquals(0, p.exitValue(), "sft_reference.py failed");
      return new ArrayList<>(Files.readAllLines(out, StandardCharsets.UTF_8));
    } finally {
      Files.deleteIfExists(out);
    }
  }
}
