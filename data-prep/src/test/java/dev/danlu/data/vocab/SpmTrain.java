package dev.danlu.data.vocab;

import dev.danlu.data.tokenizer.SentencePieceModel;
import dev.danlu.testkit.Prereq;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Test helpers: the reference {@code spm_train} (Debian sentencepiece) and a one-JVM trainer. */
public final class SpmTrain {
  private SpmTrain() {}

  public static void assumeInstalled() {
    Prereq.commands("sentencepiece", "spm_train");
  }

  /** Runs {@code spm_train --model_type=bpe} with the spec's flags; returns the model path. */
  public static Path train(Path input, BpeSpec spec, Path dir, String... extra)
      throws IOException, InterruptedException {
    Path prefix = dir.resolve("spm");
    List<String> cmd =
        new ArrayList<>(
            List.of(
                "spm_train",
                "--input=" + input,
                "--model_prefix=" + prefix,
                "--model_type=bpe",
                "--normalization_rule_name=" + spec.normalization(),
                "--vocab_size=" + spec.vocabSize(),
                "--character_coverage=" + spec.characterCoverage(),
                "--max_sentence_length=" + spec.maxSentenceLength(),
                "--split_digits=" + spec.splitDigits(),
                "--byte_fallback=" + spec.byteFallback(),
                "--add_dummy_prefix=" + spec.addDummyPrefix(),
                "--remove_extra_whitespaces=" + spec.removeExtraWhitespaces(),
                "--num_threads=2"));
    if (!spec.userDefinedSymbols().isEmpty()) {
      cmd.add("--user_defined_symbols=" + String.join(",", spec.userDefinedSymbols()));
    }
    cmd.addAll(List.of(extra));
    Process p =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(dir.resolve("spm.log").toFile())
            .start();
    if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IOException(
          "spm_train failed: " + Files.readString(dir.resolve("spm.log"), StandardCharsets.UTF_8));
    }
    return Path.of(prefix + ".model");
  }

  /** Counts words in one JVM (what the Spark job distributes) and trains. */
  public static byte[] trainLocal(List<Path> files, BpeSpec spec) throws IOException {
    byte[] charsmap = Charsmap.forRule(spec.normalization());
    CorpusReader reader = new CorpusReader(spec, charsmap);
    Map<String, Long> words = new HashMap<>();
    for (Path f : files) {
      reader.read(f, f.getFileName().toString(), (line, key) -> reader.countWords(line, words));
    }
    return SpmModelWriter.write(new BpeTrainer(spec).train(words), spec, charsmap);
  }

  public static List<String> pieces(byte[] model) throws IOException {
    SentencePieceModel m = SentencePieceModel.parse(model, "model");
    List<String> out = new ArrayList<>(m.size());
    for (int i = 0; i < m.size(); i++) {
      out.add(m.piece(i));
    }
    return out;
  }
}
