package dev.danlu.train.config;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonProperty;
import dev.danlu.train.tensor.TorchDtype;
import java.util.List;

/**
 * Everything a training run is told, bound from a YAML file in {@code conf/} plus {@code key=value}
 * overrides. Key names are the reference {@code run_pt.sh} / Hugging Face TrainingArguments flag
 * names wherever one exists, so users carry their settings over unchanged; danlu-only keys say so.
 *
 * <p>Defaults are the reference scripts' values (see REFERENCE.md "Hyperparameters").
 */
public record TrainConfig(
    // --- which recipe (LLaMA-Factory's key): pt (pretraining), sft (instruction fine-tuning),
    // dpo (preference optimisation) ---
    @JsonProperty("stage") String stage,
    // --- sft (run_sft.sh's keys): an adapter to continue, and a cut of the prepared examples ---
    @JsonProperty("peft_path") String peftPath,
    @JsonProperty("max_seq_length") int maxSeqLength,
    // HF's key: examples of similar length share a micro-batch (less padding)
    @JsonProperty("group_by_length") boolean groupByLength,
    // LLaMA-Factory's / TRL's key: several examples per row of max_seq_length, each attending only
    // to itself (danlu never cuts an example across rows)
    @JsonProperty("packing") boolean packing,
    // --- preference alignment (LLaMA-Factory's / TRL's keys; docs/alignment.md) ---
    // DPO's temperature β (TRL's default 0.1)
    @JsonProperty("beta") double beta,
    // DPO's loss: sigmoid (the paper's; the only one danlu implements)
    @JsonProperty("pref_loss") String prefLoss,
    // conservative DPO's ε: the preference labels are flipped with this probability
    @JsonProperty("dpo_label_smoothing") double dpoLabelSmoothing,
    // --- PPO (stage ppo; LLaMA-Factory's / TRL's PPOConfig keys, docs/alignment.md) ---
    // the reward model: a stage rm output directory (adapter + value_head.safetensors) on this base
    @JsonProperty("reward_model") String rewardModel,
    // optimisation passes over each iteration's rollouts
    @JsonProperty("ppo_epochs") int ppoEpochs,
    // danlu's: mini-batches (each one optimizer step) per pass; an iteration's rollouts are
    // ppo_mini_batches global batches of prompts
    @JsonProperty("ppo_mini_batches") int ppoMiniBatches,
    // response tokens sampled per prompt at most (generation stops at </s>)
    @JsonProperty("max_new_tokens") int maxNewTokens,
    // TRL's init_kl_coef, adap_kl_ctrl, target (LLaMA-Factory's ppo_target), horizon
    @JsonProperty("init_kl_coef") double initKlCoef,
    @JsonProperty("adap_kl_ctrl") boolean adapKlCtrl,
    @JsonProperty("ppo_target") double ppoTarget,
    @JsonProperty("kl_horizon") double klHorizon,
    // GAE's discount and λ, PPO's clip ranges and the value loss weight (TRL's names)
    @JsonProperty("gamma") double gamma,
    @JsonProperty("lam") double lam,
    @JsonProperty("cliprange") double cliprange,
    @JsonProperty("cliprange_value") double cliprangeValue,
    @JsonProperty("vf_coef") double vfCoef,
    // --- where things are ---
    @JsonProperty("model_name_or_path") String modelNameOrPath,
    @JsonProperty("tokenizer_name_or_path") String tokenizerNameOrPath,
    @JsonProperty("dataset_dir") String datasetDir,
    @JsonProperty("output_dir") String outputDir,
    // --- how long ---
    @JsonProperty("max_steps") int maxSteps,
    @JsonProperty("num_train_epochs") double numTrainEpochs,
    @JsonProperty("seed") long seed,
    // --- batch ---
    @JsonProperty("block_size") int blockSize,
    @JsonProperty("per_device_train_batch_size") int perDeviceTrainBatchSize,
    @JsonProperty("per_device_eval_batch_size") int perDeviceEvalBatchSize,
    @JsonProperty("gradient_accumulation_steps") int gradientAccumulationSteps,
    // --- optimizer and schedule ---
    @JsonProperty("learning_rate") double learningRate,
    @JsonProperty("lr_scheduler_type") SchedulerType lrSchedulerType,
    @JsonProperty("warmup_ratio") double warmupRatio,
    @JsonProperty("warmup_steps") int warmupSteps,
    @JsonProperty("weight_decay") double weightDecay,
    @JsonProperty("adam_beta1") double adamBeta1,
    @JsonProperty("adam_beta2") double adamBeta2,
    @JsonProperty("adam_epsilon") double adamEpsilon,
    @JsonProperty("max_grad_norm") double maxGradNorm,
    // --- LoRA and trainable modules ---
    @JsonProperty("lora_rank") int loraRank,
    @JsonProperty("lora_alpha") double loraAlpha,
    @JsonProperty("lora_dropout") double loraDropout,
    @JsonProperty("trainable") List<String> trainable,
    @JsonProperty("modules_to_save") List<String> modulesToSave,
    @JsonProperty("vocab_resize_init") VocabInit vocabResizeInit,
    // --- precision and memory ---
    @JsonProperty("torch_dtype") String torchDtype,
    @JsonProperty("fp16") boolean fp16,
    @JsonProperty("bf16") boolean bf16,
    @JsonProperty("gradient_checkpointing") boolean gradientCheckpointing,
    // HF's key: auto (tiled above 1024 tokens), eager (naive, [seq, seq] per head), tiled
    // (FlashAttention-style, memory linear in seq); docs/long-context.md
    @JsonProperty("attn_implementation") String attnImplementation,
    // --- long context (docs/long-context.md) ---
    // LLaMA-Factory's key: linear = position interpolation to the training length (factor =
    // ceil(length / max_position_embeddings)); null = the model's own rope_scaling
    @JsonProperty("rope_scaling") String ropeScaling,
    // the reference's NTK alpha (attn_and_long_ctx_patches.py): none, auto or a number
    @JsonProperty("ntk_alpha") String ntkAlpha,
    @JsonProperty("initial_scale_power") int initialScalePower,
    @JsonProperty("loss_scale_window") int lossScaleWindow,
    @JsonProperty("hysteresis") int hysteresis,
    @JsonProperty("min_loss_scale") double minLossScale,
    // --- reporting and checkpoints ---
    @JsonProperty("logging_steps") int loggingSteps,
    @JsonProperty("logging_first_step") boolean loggingFirstStep,
    @JsonProperty("save_steps") int saveSteps,
    @JsonProperty("save_total_limit") int saveTotalLimit,
    @JsonProperty("eval_steps") int evalSteps,
    // --- danlu only: distribution ---
    @JsonProperty("world_size") int worldSize,
    @JsonProperty("backend") String backend,
    @JsonProperty("ddp_backend") String ddpBackend,
    @JsonProperty("reduce_bucket_mb") int reduceBucketMb,
    // DeepSpeed's name: reduce-scatter gradients while the last micro-batch's backward runs
    @JsonProperty("overlap_comm") boolean overlapComm,
    // --- best model and early stopping (Hugging Face TrainingArguments / EarlyStoppingCallback)
    @JsonProperty("load_best_model_at_end") boolean loadBestModelAtEnd,
    // eval_loss (= loss) or eval_perplexity (= perplexity); null: eval_loss
    @JsonProperty("metric_for_best_model") String metricForBestModel,
    // null: false for a loss, true otherwise (HF's rule)
    @JsonProperty("greater_is_better") Boolean greaterIsBetter,
    // evaluations without an improvement larger than the threshold before training stops; 0: off
    @JsonProperty("early_stopping_patience") int earlyStoppingPatience,
    @JsonProperty("early_stopping_threshold") double earlyStoppingThreshold,
    // --- adapter type (PEFT's PeftType): LORA or ADALORA; AdaLoRA's keys (PEFT's AdaLoraConfig)
    @JsonProperty("peft_type") String peftType,
    @JsonProperty("init_r") int initR,
    @JsonProperty("target_r") int targetR,
    @JsonProperty("tinit") int tinit,
    @JsonProperty("tfinal") int tfinal,
    @JsonProperty("deltaT") int deltaT,
    @JsonProperty("beta1") double beta1,
    @JsonProperty("beta2") double beta2,
    @JsonProperty("orth_reg_weight") double orthRegWeight,
    // 0: not set (AdaLoRA needs it: the budget schedule's length in optimizer steps)
    @JsonProperty("total_step") int totalStep) {

  /** Learning-rate schedules, named as Hugging Face's {@code SchedulerType} values. */
  public enum SchedulerType {
    @JsonProperty("linear")
    LINEAR,
    @JsonProperty("cosine")
    COSINE,
    @JsonProperty("constant")
    CONSTANT,
    @JsonProperty("constant_with_warmup")
    CONSTANT_WITH_WARMUP
  }

  /** How rows added by a vocabulary resize are initialised (transformers 4.35 vs newer). */
  public enum VocabInit {
    @JsonProperty("normal")
    NORMAL,
    @JsonProperty("mean")
    MEAN
  }

  /** The LoRA targets of the reference scripts: all seven projections. */
  public static final List<String> DEFAULT_TRAINABLE =
      List.of("q_proj", "v_proj", "k_proj", "o_proj", "gate_proj", "down_proj", "up_proj");

  /**
   * Keys whose value types are lists: a comma-separated string is accepted, as run_pt.sh passes.
   */
  static final List<String> LIST_KEYS = List.of("trainable", "modules_to_save");

  /**
   * Storage dtype of the frozen base weights (run_pt.sh's {@code --torch_dtype}): {@code auto} is
   * the checkpoint's dtype on CUDA and float32 on CPU; float16 / bfloat16 halve the frozen weights'
   * memory while all math, trainable weights, gradients and optimizer state stay float32.
   */
  @JsonIgnore
  public TorchDtype torchDtypeSetting() {
    return TorchDtype.parse(torchDtype);
  }

  /** The attention kernel {@code attn_implementation} names. */
  @JsonIgnore
  public dev.danlu.train.model.AttentionImpl attention() {
    return dev.danlu.train.model.AttentionImpl.parse(attnImplementation);
  }

  /** The NTK scaling {@code ntk_alpha} names (NONE when unset). */
  @JsonIgnore
  public dev.danlu.train.model.NtkAlpha ntk() {
    return dev.danlu.train.model.NtkAlpha.parse(ntkAlpha, "ntk_alpha");
  }

  /** True for {@code peft_type: ADALORA} (PEFT's adaptive-rank LoRA), false for plain LoRA. */
  @JsonIgnore
  public boolean adalora() {
    return "ADALORA".equals(peftType);
  }

  /**
   * The metric the best model is chosen by, as Hugging Face names it after evaluation ({@code
   * eval_loss} or {@code eval_perplexity}); {@code loss} means {@code eval_loss}.
   */
  @JsonIgnore
  public String bestMetric() {
    String m = metricForBestModel == null ? "loss" : metricForBestModel;
    return m.startsWith("eval_") ? m : "eval_" + m;
  }

  /** Whether a larger metric is better: {@code greater_is_better}, else false for losses. */
  @JsonIgnore
  public boolean biggerIsBetter() {
    if (greaterIsBetter != null) {
      return greaterIsBetter;
    }
    String m = bestMetric();
    return !(m.equals("eval_loss") || m.equals("eval_perplexity"));
  }

  /** LoRA scaling applied to {@code B·A}: {@code alpha / r}, as PEFT. */
  public double loraScaling() {
    return loraAlpha / loraRank;
  }

  /** The global batch in sequences per optimizer step for a given data-parallel world size. */
  public int globalBatchSize(int dataParallelRanks) {
    return perDeviceTrainBatchSize * gradientAccumulationSteps * dataParallelRanks;
  }

  /**
   * Warmup steps as Hugging Face's {@code TrainingArguments.get_warmup_steps}: an explicit {@code
   * warmup_steps > 0} wins, else {@code ceil(warmup_ratio × total)}.
   */
  public int warmupStepsFor(int totalSteps) {
    return warmupSteps > 0 ? warmupSteps : (int) Math.ceil(totalSteps * warmupRatio);
  }
}
