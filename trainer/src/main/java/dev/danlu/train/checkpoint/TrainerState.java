package dev.danlu.train.checkpoint;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;

/**
 * {@code trainer_state.json} of a training checkpoint: where the run is (step = data position, as
 * the data order is a function of the step), what it needs to continue exactly (RNG keys, loss
 * scaler, schedule), and what it was trained on (config hash, model fingerprint, LoRA shape,
 * dataset manifest), which a resume checks. Field meanings: {@code docs/checkpoints.md}.
 */
public record TrainerState(
    @JsonProperty("format_version") int formatVersion,
    @JsonProperty("global_step") long globalStep,
    @JsonProperty("data_position") long dataPosition,
    @JsonProperty("epoch") int epoch,
    @JsonProperty("max_steps") long maxSteps,
    @JsonProperty("warmup_steps") long warmupSteps,
    @JsonProperty("lr_scheduler_type") String lrSchedulerType,
    @JsonProperty("learning_rate") double learningRate,
    @JsonProperty("optimizer_applied_steps") long optimizerAppliedSteps,
    @JsonProperty("global_batch_size") long globalBatchSize,
    @JsonProperty("world_size") int worldSize,
    @JsonProperty("data_seed") long dataSeed,
    @JsonProperty("dropout_seed") long dropoutSeed,
    @JsonProperty("loss_scale") double lossScale,
    @JsonProperty("loss_scaler_state") double[] lossScalerState,
    @JsonProperty("config_sha256") String configSha256,
    @JsonProperty("model_name_or_path") String modelNameOrPath,
    @JsonProperty("model_fingerprint") String modelFingerprint,
    @JsonProperty("lora") LoraShape lora,
    @JsonProperty("dataset_manifest_version") long datasetManifestVersion,
    @JsonProperty("dataset_manifest_sha256") String datasetManifestSha256,
    @JsonProperty("trainable_parameters") long trainableParameters,
    @JsonProperty("optimizer_files") List<String> optimizerFiles,
    @JsonProperty("last_loss") double lastLoss,
    // storage dtype of the frozen base weights (torch_dtype resolved); null in older checkpoints
    @JsonProperty("base_weights_dtype") String baseWeightsDtype,
    // best model / early stopping (HF's TrainerState.best_metric, best_model_checkpoint and
    // EarlyStoppingCallback's counter); null in older checkpoints and when neither is asked for
    @JsonProperty("best") Best best) {

  /**
   * The best evaluation so far: its metric value, the step of its checkpoint ({@code
   * checkpoint-<step>}, 0 when no evaluation ran yet) and the evaluations since the last
   * improvement larger than early_stopping_threshold.
   */
  public record Best(
      @JsonProperty("metric") String metric,
      @JsonProperty("best_metric") Double bestMetric,
      @JsonProperty("best_step") long bestStep,
      @JsonProperty("early_stopping_patience_counter") int patienceCounter) {}

  public static final int FORMAT_VERSION = 1;

  /**
   * The shape of what is trained: a checkpoint only fits a run with the same shape.
   *
   * @param vocabRows rows of the trained embed_tokens / lm_head (the effective vocabulary)
   */
  public record LoraShape(
      @JsonProperty("r") int r,
      @JsonProperty("lora_alpha") double loraAlpha,
      @JsonProperty("target_modules") List<String> targetModules,
      @JsonProperty("modules_to_save") List<String> modulesToSave,
      @JsonProperty("vocab_rows") int vocabRows,
      // LORA or ADALORA (null in older checkpoints: LORA)
      @JsonProperty("peft_type") String peftType) {

    public LoraShape(
        int r, double loraAlpha, List<String> targetModules, List<String> modulesToSave, int rows) {
      this(r, loraAlpha, targetModules, modulesToSave, rows, "LORA");
    }

    /** The adapter type, LORA for checkpoints that predate the field. */
    public String type() {
      return peftType == null ? "LORA" : peftType;
    }
  }
}
