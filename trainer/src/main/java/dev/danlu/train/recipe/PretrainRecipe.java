package dev.danlu.train.recipe;

import dev.danlu.data.manifest.ManifestIo;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.data.ShardBlocks;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Continued pretraining with LoRA (the reference run_clm_pt_with_peft), {@code stage: pt}: the
 * prepared shard dataset's blocks (labels = inputs, no padding) trained with causal-LM
 * cross-entropy by the {@link TrainLoop}; the final adapter goes to {@code
 * output_dir/pt_lora_model}.
 */
public final class PretrainRecipe implements Recipe {
  private TrainLoop.StepHook hook = TrainLoop.NO_HOOK;

  /** Installs a test hook (see {@link TrainLoop.StepHook}); returns this. */
  PretrainRecipe withStepHook(TrainLoop.StepHook h) {
    this.hook = h;
    return this;
  }

  @Override
  public String stage() {
    return "pt";
  }

  @Override
  public TrainLoop.Result run(TrainContext ctx, PrintStream log) throws IOException {
    TrainConfig cfg = ctx.config();
    TrainLoop.require(cfg.modelNameOrPath(), "model_name_or_path");
    TrainLoop.require(cfg.datasetDir(), "dataset_dir");
    TrainLoop.require(cfg.outputDir(), "output_dir");
    Path datasetDir = Path.of(cfg.datasetDir());
    String tokSha = null;
    if (cfg.tokenizerNameOrPath() != null) {
      Path t = Path.of(cfg.tokenizerNameOrPath());
      tokSha = ModelSetup.sha256(Files.isDirectory(t) ? t.resolve("tokenizer.model") : t);
    }
    ModelSetup model =
        ModelSetup.load(cfg, ManifestIo.readCurrent(datasetDir).params().vocabSize());
    try (ShardBlocks data =
        ShardBlocks.open(datasetDir, cfg.blockSize(), tokSha, model.config().vocabSize())) {
      return new TrainLoop(log, hook).run(ctx, model, data, Objective.CAUSAL_LM, "pt_lora_model");
    }
  }
}
