package dev.danlu.train.recipe;

import dev.danlu.data.sft.SftExamples;
import dev.danlu.data.sft.SftManifest;
import dev.danlu.data.sft.SftShards;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.data.SftBatches;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Instruction fine-tuning (the reference run_clm_sft_with_peft), {@code stage: sft}: examples
 * prepared by {@code danlu prep-sft} (Alpaca-2 prompt masked with -100), micro-batches right-padded
 * to their longest row, causal-LM cross-entropy over the response tokens, trained by the {@link
 * TrainLoop}; a new adapter, or the one at {@code peft_path} continued (e.g. pretraining's). The
 * final adapter goes to {@code output_dir/sft_lora_model}.
 */
public final class SftRecipe implements Recipe {
  /**
   * Micro-batch lengths are rounded up to a multiple of this: at most max_seq_length / 64 shapes
   * recur, so the loop's activation states (two kept, see StateCache) are rarely reallocated.
   */
  public static final int PAD_TO_MULTIPLE_OF = 64;

  @Override
  public String stage() {
    return "sft";
  }

  @Override
  public TrainLoop.Result run(TrainContext ctx, PrintStream log) throws IOException {
    TrainConfig cfg = ctx.config();
    TrainLoop.require(cfg.modelNameOrPath(), "model_name_or_path");
    TrainLoop.require(cfg.datasetDir(), "dataset_dir");
    TrainLoop.require(cfg.outputDir(), "output_dir");
    Path root = Path.of(cfg.datasetDir());
    SftManifest m = SftManifest.readCurrent(root);
    if (dev.danlu.data.sft.PairRecord.TEMPLATE.equals(m.params().template())) {
      throw new IllegalArgumentException(
          "dataset_dir "
              + root
              + " holds preference pairs (prep-pairs); train it with stage: dpo or rm, or prepare"
              + " instruction data with prep-sft");
    }
    String tokSha = null;
    if (cfg.tokenizerNameOrPath() != null) {
      Path t = Path.of(cfg.tokenizerNameOrPath());
      tokSha = ModelSetup.sha256(Files.isDirectory(t) ? t.resolve("tokenizer.model") : t);
    }
    ModelSetup model = ModelSetup.load(cfg, m.params().vocabSize());
    SftExamples train = SftShards.open(root, m, "train", tokSha);
    SftExamples validation;
    try {
      validation = SftShards.open(root, m, "validation", tokSha);
    } catch (IOException | RuntimeException e) {
      train.close();
      throw e;
    }
    try (SftBatches data =
        new SftBatches(
            train,
            validation,
            m.params().padId(),
            cfg.maxSeqLength() > 0
                ? Math.min(cfg.maxSeqLength(), m.params().maxSeqLength())
                : m.params().maxSeqLength(),
            PAD_TO_MULTIPLE_OF,
            cfg.packing(),
            m.version(),
            sha256(SftManifest.toJson(m.withoutTimestamps())))) {
      return new TrainLoop(log).run(ctx, model, data, Objective.CAUSAL_LM, "sft_lora_model");
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
