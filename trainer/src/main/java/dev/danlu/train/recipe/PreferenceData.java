package dev.danlu.train.recipe;

import dev.danlu.data.sft.PairRecord;
import dev.danlu.data.sft.SftExamples;
import dev.danlu.data.sft.SftManifest;
import dev.danlu.data.sft.SftShards;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.data.PairBatches;
import dev.danlu.train.data.SftBatches;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * What the preference recipes ({@code rm}, {@code dpo}) share: the pair dataset at {@code
 * dataset_dir} (written by prep-pairs, checked against the tokenizer like SFT's) and the model
 * checks the adapter-off reference needs.
 */
final class PreferenceData {
  private PreferenceData() {}

  /** The current manifest of {@code dataset_dir}, refused unless it holds pairs. */
  static SftManifest manifest(TrainConfig cfg) throws IOException {
    Path root = Path.of(cfg.datasetDir());
    SftManifest m = SftManifest.readCurrent(root);
    if (!PairRecord.TEMPLATE.equals(m.params().template())) {
      throw new IllegalArgumentException(
          "dataset_dir "
              + root
              + " holds "
              + m.params().template()
              + " instruction examples, not preference pairs; stage "
              + cfg.stage()
              + " trains on data prepared by `danlu prep-pairs`");
    }
    return m;
  }

  /** The pairs of both splits as micro-batches (chosen rows, then rejected rows). */
  static PairBatches open(TrainConfig cfg, SftManifest m) throws IOException {
    Path root = Path.of(cfg.datasetDir());
    String tokSha = null;
    if (cfg.tokenizerNameOrPath() != null) {
      Path t = Path.of(cfg.tokenizerNameOrPath());
      tokSha = ModelSetup.sha256(Files.isDirectory(t) ? t.resolve("tokenizer.model") : t);
    }
    SftExamples train = SftShards.open(root, m, "train", tokSha);
    SftExamples validation;
    try {
      validation = SftShards.open(root, m, "validation", tokSha);
    } catch (IOException | RuntimeException e) {
      train.close();
      throw e;
    }
    long trainRows = train.rows();
    long validationRows = validation.rows();
    String sha = sha256(SftManifest.toJson(m.withoutTimestamps()));
    SftBatches rows =
        new SftBatches(
            train,
            validation,
            m.params().padId(),
            cfg.maxSeqLength() > 0
                ? Math.min(cfg.maxSeqLength(), m.params().maxSeqLength())
                : m.params().maxSeqLength(),
            SftRecipe.PAD_TO_MULTIPLE_OF,
            false,
            m.version(),
            sha);
    try {
      return new PairBatches(rows, trainRows, validationRows, sha);
    } catch (RuntimeException e) {
      rows.close();
      throw e;
    }
  }

  /**
   * Refuses a model whose adapter resizes the vocabulary: with the adapter off, the base model has
   * no embeddings for the new tokens, so there is no reference policy to score them.
   */
  static void requireBaseVocabulary(ModelSetup model, String stage) {
    int base = model.weights().config().vocabSize();
    int vocab = model.config().vocabSize();
    if (vocab != base) {
      throw new IllegalArgumentException(
          "stage "
              + stage
              + ": the reference policy is the base model with the adapter off, which has "
              + base
              + " embeddings, but the data's tokenizer (or peft_path's adapter) has "
              + vocab
              + " tokens; merge the vocabulary-extending adapter into the base first (`danlu"
              + " merge`) and train on the merged model");
    }
  }

  private static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
