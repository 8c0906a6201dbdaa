package dev.danlu.train.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import dev.danlu.data.tokenizer.SentencePieceModel;
import dev.danlu.jobs.prep.PrepCli;
import dev.danlu.jobs.vocab.VocabCli;
import dev.danlu.testkit.Prereq;
import dev.danlu.train.checkpoint.SafeTensors;
import dev.danlu.train.config.ConfigLoader;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.RandomInit;
import dev.danlu.train.recipe.RecipeTestSupport;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 15's model side, end to end: {@code vocab train} (Spark local[2]) on a slice of
 * chinese-poetry → {@code vocab merge} into the stories260K tokenizer (512 pieces) → {@code prep}
 * with the merged tokenizer → 2 training steps of a random 512-token model with embed_tokens and
 * lm_head in modules_to_save. The adapter's embed_tokens / lm_head have the merged vocabulary's
 * rows, the loss is finite, and the consistency checks refuse the mismatched runs (no resizable
 * modules; the base tokenizer named for shards made with the merged one).
 */
class VocabExtensionPipelineTest {
  static final int BASE_VOCAB = 512;
  static final int HIDDEN = 32;
  static final int ZH_VOCAB = 4000; // the slice's alphabet is 3886 characters at coverage 0.9995

  @TempDir Path tmp;

  @Test
  void trainMergePrepTrainResizesTheEmbeddingsToTheMergedVocabulary() throws Exception {
    Path base = Prereq.shared("fixtures/stories260K/tokenizer.model");
    Path poetry = Prereq.cached("corpora/chinese");
    // the first ≥ 300 lines of the corpus (38 files) to train on, the next file's lines held out
    Path corpus = Files.createDirectories(tmp.resolve("zh"));
    List<Path> files;
    try (Stream<Path> s = Files.list(poetry)) {
      files = s.filter(p -> p.toString().endsWith(".txt")).sorted().toList();
    }
    int lines = 0;
    int next = 0;
    while (lines < 300) {
      Path f = files.get(next++);
      Files.copy(f, corpus.resolve(f.getFileName()));
      lines += Files.readAllLines(f, StandardCharsets.UTF_8).size();
    }
    Path heldOut = tmp.resolve("held-out.txt");
    Files.write(
        heldOut,
        Files.readAllLines(files.get(next), StandardCharsets.UTF_8).stream()
            .filter(l -> !l.isBlank())
            .toList(),
        StandardCharsets.UTF_8);

    // vocab train
    Path zh = tmp.resolve("zh.model");
    String trainOut =
        vocab(
            "train",
            "--input",
            corpus.toString(),
            "--vocab-size",
            Integer.toString(ZH_VOCAB),
            "--output",
            zh.toString(),
            "--master",
            "local[2]");
    assertTrue(trainOut.contains("vocab train: " + next + " files"), trainOut);
    SentencePieceModel zhModel = SentencePieceModel.parse(Files.readAllBytes(zh), "zh.model");
    assertEquals(ZH_VOCAB, zhModel.size());

    // vocab merge --check: base pieces kept, the new ones appended, fewer tokens per character
    Path merged = tmp.resolve("merged.model");
    String mergeOut =
        vocab(
            "merge",
            "--base",
            base.toString(),
            "--add",
            zh.toString(),
            "--output",
            merged.toString(),
            "--check",
            "--check-text",
            heldOut.toString());
    SentencePieceModel baseModel = SentencePieceModel.parse(Files.readAllBytes(base), "base");
    SentencePieceModel mergedModel = SentencePieceModel.parse(Files.readAllBytes(merged), "merged");
    int mergedVocab = mergedModel.size();
    assertEquals(BASE_VOCAB, baseModel.size());
    assertTrue(mergedVocab > BASE_VOCAB + 3000, "merged " + mergedVocab);
    assertTrue(
        mergeOut.contains(
            BASE_VOCAB
                + " base pieces + "
                + (mergedVocab - BASE_VOCAB)
                + " added = "
                + mergedVocab),
        mergeOut);
    for (int i = 0; i < BASE_VOCAB; i++) {
      assertEquals(baseModel.piece(i), mergedModel.piece(i), "base id " + i);
    }
    Matcher tpc =
        Pattern.compile("tokens/char ([0-9.]+) with --base, ([0-9.]+) merged").matcher(mergeOut);
    assertTrue(tpc.find(), mergeOut);
    double before = Double.parseDouble(tpc.group(1));
    double after = Double.parseDouble(tpc.group(2));
    System.out.printf(
        "vocab merge: %d + %d pieces; held-out tokens/char %.3f -> %.3f%n",
        BASE_VOCAB, mergedVocab - BASE_VOCAB, before, after);
    assertTrue(after < 0.8 * before, "tokens/char " + before + " -> " + after);

    // prep with the merged tokenizer: the manifest carries its size, the new ids are used
    Path data = tmp.resolve("shards");
    int prep =
        PrepCli.run(
            new String[] {
              "--input",
              corpus.toString(),
              "--tokenizer",
              merged.toString(),
              "--block-size",
              "32",
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
    assertEquals(mergedVocab, m.params().vocabSize());
    assertTrue(m.totals().trainBlocks() >= 50, m.totals().toString());

    // a random model with the base's 512-token vocabulary
    Path model = tmp.resolve("model");
    RandomInit.writeHfDir(
        model,
        new LlamaConfig(HIDDEN, 64, 2, 4, 2, BASE_VOCAB, 1e-5, 10000.0, null, false, 256),
        7,
        base);
    Map<Long, Double> losses = new ConcurrentSkipListMap<>();
    Path out = tmp.resolve("out");
    String log =
        RecipeTestSupport.train(
            1, cfg(model, merged, data, out), (s, mx, l, t, e, x) -> losses.put(s, l));
    assertTrue(
        log.contains(
            "vocabulary resized from " + BASE_VOCAB + " to the tokenizer's " + mergedVocab),
        log);
    assertEquals(2, losses.size(), losses.toString());
    for (double l : losses.values()) {
      assertTrue(Double.isFinite(l) && l > 0, "loss " + losses);
    }
    System.out.println("2 steps on the merged vocabulary: losses " + losses.values());
    try (SafeTensors st =
        SafeTensors.open(out.resolve("pt_lora_model/adapter_model.safetensors"))) {
      assertArrayEquals(new long[] {mergedVocab, HIDDEN}, st.info(LoraAdapter.EMBED_KEY).shape());
      assertArrayEquals(new long[] {mergedVocab, HIDDEN}, st.info(LoraAdapter.LM_HEAD_KEY).shape());
    }

    // refused: nothing to resize; the base tokenizer named for shards of the merged one
    Exception noResize =
        assertThrows(
            Exception.class,
            () ->
                RecipeTestSupport.train(
                    1, cfg(model, merged, data, tmp.resolve("out2"), "modules_to_save="), null));
    assertTrue(
        noResize
            .getMessage()
            .contains(
                "tokenizer has " + mergedVocab + " pieces but the model " + model + " only 512"),
        noResize.getMessage());
    Exception wrongTokenizer =
        assertThrows(
            Exception.class,
            () -> RecipeTestSupport.train(1, cfg(model, base, data, tmp.resolve("out3")), null));
    assertTrue(
        wrongTokenizer.getMessage().contains("made with tokenizer sha256"),
        wrongTokenizer.getMessage());
  }

  static String vocab(String... args) {
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    PrintStream out = new PrintStream(buf, true, StandardCharsets.UTF_8);
    int rc = VocabCli.commandLine(out).execute(args);
    String text = buf.toString(StandardCharsets.UTF_8);
    assertEquals(0, rc, String.join(" ", args) + ":\n" + text);
    return text;
  }

  static TrainConfig cfg(Path model, Path tokenizer, Path data, Path out, String... extra)
      throws Exception {
    List<String> o = new ArrayList<>();
    o.add("output_dir=" + out);
    o.addAll(List.of(extra));
    String yaml =
        String.join(
            "\n",
            "model_name_or_path: " + model,
            "tokenizer_name_or_path: " + tokenizer,
            "dataset_dir: " + data,
            "seed: 5",
            "max_steps: 2",
            "per_device_train_batch_size: 2",
            "gradient_accumulation_steps: 1",
            "learning_rate: 1.0e-3",
            "lora_rank: 4",
            "lora_alpha: 8",
            "modules_to_save: embed_tokens,lm_head",
            "logging_steps: 1",
            "save_steps: 2",
            "");
    return ConfigLoader.load(yaml, "vocab-pipeline.yaml", o).config();
  }
}
