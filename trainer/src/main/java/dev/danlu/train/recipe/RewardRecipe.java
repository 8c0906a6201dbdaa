package dev.danlu.train.recipe;

import dev.danlu.data.sft.SftManifest;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.data.PairBatches;
import java.io.IOException;
import java.io.PrintStream;

/**
 * Reward-model training, {@code stage: rm} (LLaMA-Factory's stage, TRL's RewardTrainer): pairs
 * prepared by {@code danlu prep-pairs}, LoRA (+ modules_to_save) plus a {@link ValueHead} trained
 * in full, the pairwise {@link RewardObjective}, trained by the {@link TrainLoop}. The final
 * adapter goes to {@code output_dir/rm_lora_model} with the head beside it as {@code
 * value_head.safetensors}; checkpoints keep the head in their optimizer state (resume restores it).
 */
public final class RewardRecipe implements Recipe {
  @Override
  public String stage() {
    return "rm";
  }

  @Override
  public TrainLoop.Result run(TrainContext ctx, PrintStream log) throws IOException {
    TrainConfig cfg = ctx.config();
    TrainLoop.require(cfg.modelNameOrPath(), "model_name_or_path");
    TrainLoop.require(cfg.datasetDir(), "dataset_dir");
    TrainLoop.require(cfg.outputDir(), "output_dir");
    SftManifest m = PreferenceData.manifest(cfg);
    ModelSetup model = ModelSetup.load(cfg, m.params().vocabSize());
    ValueHead head = ValueHead.init(model.config().hiddenSize(), cfg.seed());
    RewardObjective objective = new RewardObjective(head, head.attachTo(model.adapter()));
    try (PairBatches data = PreferenceData.open(cfg, m)) {
      TrainLoop.Result r = new TrainLoop(log).run(ctx, model, data, objective, "rm_lora_model");
      if (ctx.rank() == 0) {
        head.save(r.adapterDir()); // the trained head: the loop copied the final values into it
        log.println("[rank 0] value head written to " + r.adapterDir().resolve(ValueHead.FILE));
      }
      ctx.comm().barrier();
      return r;
    }
  }
}
