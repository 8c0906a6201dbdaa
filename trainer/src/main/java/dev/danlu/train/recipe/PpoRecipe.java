package dev.danlu.train.recipe;

import dev.danlu.data.sft.PairRecord;
import dev.danlu.data.sft.SftExamples;
import dev.danlu.data.sft.SftManifest;
import dev.danlu.data.sft.SftShards;
import dev.danlu.train.checkpoint.PeftAdapter;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.PeftBridge;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Proximal policy optimisation against a reward model, {@code stage: ppo} (LLaMA-Factory's stage,
 * TRL's PPOTrainer): the policy is the base + a new LoRA adapter + a value head, the reference is
 * the base with the adapter off, the reward is the reward model at {@code reward_model} (a {@code
 * stage: rm} output: its own adapter and value head on the same base). Prompts are the prompt part
 * of {@code dataset_dir}'s train examples, instruction data (prep-sft) or pairs (prep-pairs: one
 * prompt per pair). {@link PpoIterations} runs rollouts and {@code ppo_epochs} passes of {@link
 * PpoObjective} mini-batch steps inside the {@link TrainLoop}. The final adapter goes to {@code
 * output_dir/ppo_lora_model} with the policy's value head beside it.
 */
public final class PpoRecipe implements Recipe {
  @Override
  public String stage() {
    return "ppo";
  }

  @Override
  public TrainLoop.Result run(TrainContext ctx, PrintStream log) throws IOException {
    TrainConfig cfg = ctx.config();
    TrainLoop.require(cfg.modelNameOrPath(), "model_name_or_path");
    TrainLoop.require(cfg.datasetDir(), "dataset_dir");
    TrainLoop.require(cfg.outputDir(), "output_dir");
    TrainLoop.require(cfg.rewardModel(), "reward_model");
    if (cfg.groupByLength()) {
      throw new IllegalArgumentException(
          "group_by_length does not apply to stage ppo (micro-batches are rollouts); remove it");
    }
    Path root = Path.of(cfg.datasetDir());
    SftManifest m = SftManifest.readCurrent(root);
    int stride = PairRecord.TEMPLATE.equals(m.params().template()) ? 2 : 1;
    ModelSetup model = ModelSetup.load(cfg, m.params().vocabSize());
    PreferenceData.requireBaseVocabulary(model, stage());
    Path rmDir = Path.of(cfg.rewardModel());
    LoraAdapter rm = loadRewardModel(rmDir, model, m, cfg.seed());
    ValueHead rmHead = ValueHead.load(rmDir, model.config().hiddenSize());
    ValueHead head = ValueHead.init(model.config().hiddenSize(), cfg.seed());
    org.nd4j.linalg.api.ndarray.INDArray[] headGrads = head.attachTo(model.adapter());
    String tokSha = null;
    if (cfg.tokenizerNameOrPath() != null) {
      Path t = Path.of(cfg.tokenizerNameOrPath());
      tokSha = ModelSetup.sha256(Files.isDirectory(t) ? t.resolve("tokenizer.model") : t);
    }
    SftExamples prompts = SftShards.open(root, m, "train", tokSha);
    try (PpoIterations it =
        new PpoIterations(
            cfg,
            ctx.comm(),
            model,
            head,
            rm,
            rmHead,
            prompts,
            stride,
            m.params().eosId(),
            m.params().padId(),
            m.version(),
            // the prompts' identity: the dataset's manifest, as every recipe records it (a resume
            // on other prompts is refused)
            ModelSetup.sha256Hex(SftManifest.toJson(m.withoutTimestamps())),
            log)) {
      PpoObjective objective =
          new PpoObjective(
              head, headGrads, it::rollout, cfg.cliprange(), cfg.cliprangeValue(), cfg.vfCoef());
      TrainLoop.Result r = new TrainLoop(log).run(ctx, model, it, objective, "ppo_lora_model", it);
      if (ctx.rank() == 0) {
        head.save(r.adapterDir()); // the trained value head: the loop copied the final values in
        log.println("[rank 0] value head written to " + r.adapterDir().resolve(ValueHead.FILE));
      }
      ctx.comm().barrier();
      return r;
    }
  }

  /**
   * The reward model's adapter, refused unless it was trained on this base with this tokenizer:
   * same vocabulary, same base model (its adapter_config's base_model_name_or_path, when that
   * directory exists here), and that base's tokenizer equal to the one the prompts were made with.
   */
  static LoraAdapter loadRewardModel(Path dir, ModelSetup model, SftManifest m, long seed)
      throws IOException {
    if (!Files.isRegularFile(dir.resolve(PeftAdapter.CONFIG))) {
      throw new IOException(
          "reward_model "
              + dir
              + " has no "
              + PeftAdapter.CONFIG
              + ": give the rm_lora_model directory a stage: rm run wrote");
    }
    LoraAdapter rm = PeftBridge.load(dir, model.weights().config(), DataType.FLOAT, seed);
    if (rm.vocabSize() != model.config().vocabSize()) {
      throw new IllegalArgumentException(
          "reward_model "
              + dir
              + " covers "
              + rm.vocabSize()
              + " tokens but the policy's tokenizer has "
              + model.config().vocabSize()
              + ": the reward model was trained with another tokenizer; train it on data made"
              + " with the policy's tokenizer");
    }
    String base = PeftAdapter.load(dir).config().baseModelNameOrPath();
    if (base != null && Files.isRegularFile(Path.of(base).resolve("config.json"))) {
      Path tok = Path.of(base).resolve("tokenizer.model");
      if (Files.isRegularFile(tok)
          && m.params().tokenizerSha256() != null
          && !ModelSetup.sha256(tok).equals(m.params().tokenizerSha256())) {
        throw new IllegalArgumentException(
            "reward_model "
                + dir
                + " was trained on "
                + base
                + ", whose tokenizer "
                + tok
                + " differs from the one dataset_dir's prompts were made with ("
                + m.params().tokenizerFile()
                + "); a reward model scores the policy's tokens only with the same tokenizer");
      }
      if (!ModelSetup.fingerprint(Path.of(base)).equals(model.fingerprint())) {
        throw new IllegalArgumentException(
            "reward_model "
                + dir
                + " was trained on the base model "
                + base
                + ", not on model_name_or_path; its adapter only applies to the base it was"
                + " trained on");
      }
    }
    return rm;
  }
}
