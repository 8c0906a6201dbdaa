package dev.danlu.train.export;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import dev.danlu.testkit.Prereq;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.RandomInit;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * llama.cpp tokenizes with the vocabulary danlu writes into a GGUF file exactly as SentencePiece
 * ({@code spm_encode}) does with the original {@code tokenizer.model}: the 55296-piece
 * Chinese-LLaMA-2 tokenizer on held-out modern and classical Chinese (mixed with English, digits,
 * code and punctuation), and LLaMA-2's 32000-piece tokenizer on English and Chinese. The models are
 * tiny random ones with those vocabulary sizes: only the tokenizer metadata matters here.
 */
class GgufTokenizerTest {
  @TempDir Path tmp;

  @Test
  void chinese55296TokenizesAsSentencePiece() throws Exception {
    Path sp = Prereq.shared("fixtures/tokenizers/chinese-llama2-tokenizer.model");
    List<String> texts = new ArrayList<>(alpacaTexts(150));
    texts.addAll(lines(Prereq.cached("corpora/chinese/dist_lunyu_lunyu.txt"), 60));
    texts.addAll(lines(Prereq.cached("corpora/chinese/dist_caocaoshiji_caocao.txt"), 20));
    compare(sp, 55296, texts);
  }

  @Test
  void llama32000TokenizesAsSentencePiece() throws Exception {
    Path sp = Prereq.cached("corpora/tokenizers/llama2-tokenizer.model");
    List<String> texts =
        new ArrayList<>(lines(Prereq.cached("corpora/english/moby-dick.txt"), 200));
    texts.addAll(alpacaTexts(40));
    compare(sp, 32000, texts);
  }

  private void compare(Path sp, int vocab, List<String> texts) throws Exception {
    Prereq.commands("sentencepiece", "spm_encode");
    LlamaCpp.dir();
    LlamaConfig c = new LlamaConfig(16, 32, 1, 2, 1, vocab, 1e-5, 10000.0, null, true, 64);
    Path model = tmp.resolve("tiny-" + vocab);
    RandomInit.writeHfDir(model, c, 3, sp);
    Path gguf = tmp.resolve("tiny-" + vocab + ".gguf");
    GgufExport.run(new GgufExport.Options(model, null, gguf, ExportType.F32, 0, false));
    List<int[]> expected = spmEncode(sp, texts);
    JsonNode got = LlamaCpp.run(tmp, new LlamaCpp.Run(gguf, null).tokenize(texts)).get(0).get(0);
    int tokens = 0;
    for (int i = 0; i < texts.size(); i++) {
      assertEquals(
          Arrays.toString(expected.get(i)),
          Arrays.toString(LlamaCpp.ints(got.get(i))),
          "text " + i + ": " + texts.get(i));
      tokens += expected.get(i).length;
    }
    System.out.printf(
        "GgufTokenizerTest: %d texts, %d tokens identical (vocab %d)%n",
        texts.size(), tokens, vocab);
  }

  /** spm_encode --output_format=id, one line per text (no BOS/EOS). */
  private List<int[]> spmEncode(Path sp, List<String> texts) throws Exception {
    Path in = tmp.resolve("texts.txt");
    Files.write(in, texts, StandardCharsets.UTF_8);
    Process p =
        new ProcessBuilder("spm_encode", "--model=" + sp, "--output_format=id", in.toString())
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start();
    try {
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new IOException("spm_encode failed");
      }
      List<int[]> r = new ArrayList<>();
      for (String line : out.split("\n", -1)) {
        if (r.size() == texts.size()) {
          break;
        }
        r.add(
            line.isBlank()
                ? new int[0]
                : Arrays.stream(line.trim().split(" ")).mapToInt(Integer::parseInt).toArray());
      }
      return r;
    } finally {
      p.destroyForcibly();
    }
  }

  /** Outputs and inputs of alpaca-zh-2000's last records, split into non-empty lines. */
  static List<String> alpacaTexts(int n) throws IOException {
    JsonNode recs =
        LlamaCpp.JSON.readTree(Prereq.shared("fixtures/sft/alpaca-zh-2000.json").toFile());
    List<String> out = new ArrayList<>();
    for (int i = recs.size() - 1; i >= 0 && out.size() < n; i--) {
      for (String f : List.of("instruction", "input", "output")) {
        for (String line : recs.get(i).path(f).asText("").split("\n")) {
          if (!line.isBlank() && out.size() < n) {
            out.add(line);
          }
        }
      }
    }
    return out;
  }

  static List<String> lines(Path file, int n) throws IOException {
    return Files.readAllLines(file, StandardCharsets.UTF_8).stream()
        .filter(l -> !l.isBlank())
        .limit(n)
        .toList();
  }
}
