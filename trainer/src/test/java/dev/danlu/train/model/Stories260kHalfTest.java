package dev.danlu.train.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.train.cli.GenerateCli;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The real stories260K model generating with half-precision storage: every step's logits are
 * bit-identical to the float32 model whose weights were rounded to that dtype beforehand, so the
 * greedy text is that model's text; how far it follows llama2.c's published float32 text is printed
 * (docs/precision.md records it). {@code danlu generate --torch-dtype} takes the same path.
 */
class Stories260kHalfTest {

  @ParameterizedTest
  @CsvSource({"HALF, float16", "BFLOAT16, bfloat16"})
  void halfStorageGeneratesWhatTheRoundedFloatModelGenerates(String type, String torchName)
      throws Exception {
    Path dir = Stories260kTest.modelDir();
    DataType t = DataType.valueOf(type);
    LlamaWeights half = HfLlama.load(dir, t);
    LlamaWeights rounded =
        HfLlama.load(dir, DataType.FLOAT).withStorage(t).withStorage(DataType.FLOAT);
    assertEquals(DataType.FLOAT, rounded.storageType());
    String published =
        Files.readString(dir.resolve("expected-greedy-from-bos.txt"), StandardCharsets.UTF_8);
    try (TextTokenizer tok = TextTokenizer.load(dir.resolve("tokenizer.model"))) {
      Generator gh = new Generator(half, 256);
      Generator gr = new Generator(rounded, 256);
      int[] ids = {1, 403, 407, 261, 378, 27, 18, 275, 290, 300, 357, 391};
      for (int p = 0; p < ids.length; p++) {
        assertArrayEquals(gr.step(ids[p], p), gh.step(ids[p], p), "logits at position " + p);
      }
      int[] outH =
          new Generator(half, 256)
              .generate(
                  new int[] {tok.bosId()}, 256, new Sampler(0, 1, 0), tok.bosId(), tok.eosId());
      int[] outR =
          new Generator(rounded, 256)
              .generate(
                  new int[] {tok.bosId()}, 256, new Sampler(0, 1, 0), tok.bosId(), tok.eosId());
      assertArrayEquals(outR, outH, "same tokens as the pre-rounded float32 model");
      String text = tok.decode(outH) + "\n";
      int same = 0;
      while (same < Math.min(text.length(), published.length())
          && text.charAt(same) == published.charAt(same)) {
        same++;
      }
      System.err.printf(
          "stories260K torch_dtype=%s: %d tokens, %s llama2.c's float32 text (%d of %d chars agree)%n",
          torchName,
          outH.length,
          text.equals(published) ? "IDENTICAL to" : "differs from",
          same,
          published.length());
      if (t != DataType.HALF) {
        return; // the CLI path is the same for both types; run it once
      }
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      ByteArrayOutputStream err = new ByteArrayOutputStream();
      int rc =
          GenerateCli.run(
              new String[] {
                "--model",
                dir.toString(),
                "--prompt",
                "",
                "--max-new-tokens",
                "256",
                "--torch-dtype",
                torchName
              },
              new PrintStream(out, true, StandardCharsets.UTF_8),
              new PrintStream(err, true, StandardCharsets.UTF_8));
      String log = err.toString(StandardCharsets.UTF_8);
      assertEquals(0, rc, log);
      assertTrue(log.contains("weights stored as " + type), log);
      assertEquals(tok.decode(outH), out.toString(StandardCharsets.UTF_8).strip());
    }
  }
}
