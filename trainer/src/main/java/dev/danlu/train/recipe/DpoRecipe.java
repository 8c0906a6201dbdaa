package dev.danlu.train.recipe;

import dev.danlu.data.sft.SftManifest;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.data.PairBatches;
import java.io.IOException;
import java.io.PrintStream;

/**
 * Direct preference optimisation, {@code stage: dpo} (LLaMA-Factory's stage, TRL's DPOTrainer):
 * pairs prepared by {@code danlu prep-pairs}, the {@link DpoObjective} (sigmoid loss with {@code
 * beta} and {@code dpo_label_smoothing}; reference = the base with the adapter off), trained by the
 * {@link TrainLoop}; a new adapter or {@code peft_path}'s continued. The final adapter goes to
 * {@code output_dir/dpo_lora_model}.
 */
public final class DpoRecipe implements Recipe {
  @Override
  public String stage() {
    return "dpo";
  }

  @Override
  public TrainLoop.Result run(TrainContext ctx, PrintStream log) throws IOException {
    TrainConfig cfg = ctx.config();
    TrainLoop.require(cfg.modelNameOrPath(), "model_name_or_path");
    TrainLoop.require(cfg.datasetDir(), "dataset_dir");
    TrainLoop.require(cfg.outputDir(), "output_dir");
    SftManifest m = PreferenceData.manifest(cfg);
    ModelSetup model = ModelSetup.load(cfg, m.params().vocabSize());
    PreferenceData.requireBaseVocabulary(model, stage());
    try (PairBatches data = PreferenceData.open(cfg, m)) {
      return new TrainLoop(log)
          .run(
              ctx,
              model,
              data,
              new DpoObjective(cfg.beta(), cfg.dpoLabelSmoothing()),
              "dpo_lora_model");
    }
  }
}
