package dev.danlu.train.config;

import dev.danlu.train.tensor.TorchDtype;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/** Range and consistency checks on a bound config; each problem names its key and the fix. */
final class Validation {
  static final Set<String> LORA_TARGETS =
      Set.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");
  static final Set<String> SAVABLE_MODULES = Set.of("embed_tokens", "lm_head");
  static final Set<String> BACKENDS = Set.of("auto", "cpu", "cuda");
  static final Set<String> DDP_BACKENDS = Set.of("auto", "tcp", "nccl");

  private Validation() {}

  static List<String> check(TrainConfig c) {
    List<String> p = new ArrayList<>();
    required(p, "model_name_or_path", c.modelNameOrPath(), "a Hugging Face LLaMA directory");
    required(p, "dataset_dir", c.datasetDir(), "a dataset written by `danlu prep`");
    required(p, "output_dir", c.outputDir(), "where checkpoints and the adapter go");
    if (c.maxSteps() <= 0 && c.numTrainEpochs() <= 0) {
      p.add("set max_steps > 0 or num_train_epochs > 0 (both say: train for nothing)");
    }
    positive(p, "per_device_train_batch_size", c.perDeviceTrainBatchSize());
    positive(p, "per_device_eval_batch_size", c.perDeviceEvalBatchSize());
    positive(p, "gradient_accumulation_steps", c.gradientAccumulationSteps());
    if (c.maxSeqLength() < 0) {
      p.add(
          "max_seq_length must be ≥ 0 (0 = the prepared examples' length), got "
              + c.maxSeqLength());
    }
    if (c.packing() && !"sft".equals(c.stage())) {
      p.add(
          "packing applies to stage sft (instruction examples); stage "
              + c.stage()
              + " trains on full rows already: remove packing");
    }
    if (!(c.beta() > 0)) {
      p.add("beta must be > 0 (DPO's temperature; TRL's default 0.1), got " + c.beta());
    }
    if (!"sigmoid".equals(c.prefLoss())) {
      p.add(
          "pref_loss "
              + c.prefLoss()
              + " is not implemented; danlu's DPO has the sigmoid loss (pref_loss: sigmoid)");
    }
    if (c.dpoLabelSmoothing() < 0 || c.dpoLabelSmoothing() > 0.5) {
      p.add("dpo_label_smoothing must be in [0, 0.5], got " + c.dpoLabelSmoothing());
    }
    if (c.ppoEpochs() < 1 || c.ppoMiniBatches() < 1 || c.maxNewTokens() < 1) {
      p.add(
          "ppo_epochs, ppo_mini_batches and max_new_tokens must be ≥ 1, got "
              + c.ppoEpochs()
              + ", "
              + c.ppoMiniBatches()
              + ", "
              + c.maxNewTokens());
    }
    if (c.initKlCoef() < 0 || !(c.ppoTarget() > 0) || !(c.klHorizon() > 0)) {
      p.add("init_kl_coef must be ≥ 0, ppo_target and kl_horizon > 0 (TRL's 0.2, 6, 10000)");
    }
    if (c.gamma() < 0 || c.gamma() > 1 || c.lam() < 0 || c.lam() > 1) {
      p.add("gamma and lam must be in [0, 1] (TRL's 1 and 0.95)");
    }
    if (!(c.cliprange() > 0) || !(c.cliprangeValue() > 0) || c.vfCoef() < 0) {
      p.add("cliprange and cliprange_value must be > 0, vf_coef ≥ 0 (TRL's 0.2, 0.2, 0.1)");
    }
    if (c.blockSize() < 0) {
      p.add("block_size must be ≥ 0 (0 = the prepared dataset's), got " + c.blockSize());
    }
    if (!(c.learningRate() > 0)) {
      p.add("learning_rate must be > 0, got " + c.learningRate());
    }
    if (c.warmupRatio() < 0 || c.warmupRatio() > 1) {
      p.add("warmup_ratio must be in [0, 1], got " + c.warmupRatio());
    }
    if (c.warmupSteps() < 0) {
      p.add("warmup_steps must be ≥ 0, got " + c.warmupSteps());
    }
    if (c.weightDecay() < 0) {
      p.add("weight_decay must be ≥ 0, got " + c.weightDecay());
    }
    if (c.adamBeta1() < 0 || c.adamBeta1() >= 1 || c.adamBeta2() < 0 || c.adamBeta2() >= 1) {
      p.add("adam_beta1 and adam_beta2 must be in [0, 1)");
    }
    if (!(c.adamEpsilon() > 0)) {
      p.add("adam_epsilon must be > 0, got " + c.adamEpsilon());
    }
    if (c.maxGradNorm() < 0) {
      p.add("max_grad_norm must be ≥ 0 (0 disables clipping), got " + c.maxGradNorm());
    }
    positive(p, "lora_rank", c.loraRank());
    if (!(c.loraAlpha() > 0)) {
      p.add("lora_alpha must be > 0, got " + c.loraAlpha());
    }
    if (c.loraDropout() < 0 || c.loraDropout() >= 1) {
      p.add("lora_dropout must be in [0, 1), got " + c.loraDropout());
    }
    subset(p, "trainable", c.trainable(), LORA_TARGETS);
    subset(p, "modules_to_save", c.modulesToSave(), SAVABLE_MODULES);
    try {
      TorchDtype.parse(c.torchDtype());
    } catch (IllegalArgumentException e) {
      p.add(e.getMessage() + " (auto = the checkpoint's dtype on CUDA, float32 on CPU)");
    }
    try {
      c.attention();
    } catch (IllegalArgumentException e) {
      p.add(e.getMessage());
    }
    try {
      c.ntk();
    } catch (IllegalArgumentException e) {
      p.add(e.getMessage());
    }
    if (c.ropeScaling() != null && !"linear".equals(c.ropeScaling())) {
      p.add(
          "rope_scaling '"
              + c.ropeScaling()
              + "' is not supported in training: use linear (position interpolation) or leave"
              + " it unset");
    }
    if (c.fp16() && c.bf16()) {
      p.add("fp16 and bf16 are both true: choose one");
    }
    if (c.initialScalePower() < 0 || c.initialScalePower() > 32) {
      p.add("initial_scale_power must be in [0, 32], got " + c.initialScalePower());
    }
    positive(p, "loss_scale_window", c.lossScaleWindow());
    positive(p, "hysteresis", c.hysteresis());
    positive(p, "logging_steps", c.loggingSteps());
    positive(p, "save_steps", c.saveSteps());
    positive(p, "save_total_limit", c.saveTotalLimit());
    if (c.evalSteps() < 0) {
      p.add("eval_steps must be ≥ 0 (0 = no evaluation), got " + c.evalSteps());
    }
    if (c.worldSize() < 0) {
      p.add("world_size must be ≥ 0 (0 = from the cluster), got " + c.worldSize());
    }
    oneOf(p, "backend", c.backend(), BACKENDS);
    oneOf(p, "ddp_backend", c.ddpBackend(), DDP_BACKENDS);
    positive(p, "reduce_bucket_mb", c.reduceBucketMb());
    bestModel(p, c);
    adalora(p, c);
    return p;
  }

  static final Set<String> BEST_METRICS = Set.of("eval_loss", "eval_perplexity");

  /** Hugging Face's checks for load_best_model_at_end and EarlyStoppingCallback. */
  private static void bestModel(List<String> p, TrainConfig c) {
    if (!BEST_METRICS.contains(c.bestMetric())) {
      p.add(
          "metric_for_best_model '"
              + c.metricForBestModel()
              + "' is not computed: use one of loss, eval_loss, perplexity, eval_perplexity");
    }
    if (c.earlyStoppingPatience() < 0) {
      p.add("early_stopping_patience must be ≥ 0 (0 = no early stopping)");
    }
    if (!(c.earlyStoppingThreshold() >= 0)) {
      p.add("early_stopping_threshold must be ≥ 0, got " + c.earlyStoppingThreshold());
    }
    if ((c.loadBestModelAtEnd() || c.earlyStoppingPatience() > 0) && c.evalSteps() <= 0) {
      p.add(
          "load_best_model_at_end / early_stopping_patience need evaluations: set eval_steps > 0"
              + " (and a validation split in the dataset)");
    }
    if (c.loadBestModelAtEnd() && ("rm".equals(c.stage()) || "ppo".equals(c.stage()))) {
      // their value head is saved beside the final adapter only, not with each checkpoint's
      // adapter, so the best checkpoint could not supply a matching head
      p.add(
          "load_best_model_at_end is not supported for stage "
              + c.stage()
              + " yet (the value head is not kept per checkpoint): set it to false");
    }
    if (c.earlyStoppingPatience() > 0 && !c.loadBestModelAtEnd()) {
      p.add(
          "early_stopping_patience needs load_best_model_at_end: true (as Hugging Face's"
              + " EarlyStoppingCallback)");
    }
  }

  /** PEFT's AdaLoraConfig checks, before any training. */
  private static void adalora(List<String> p, TrainConfig c) {
    if (!"LORA".equals(c.peftType()) && !"ADALORA".equals(c.peftType())) {
      p.add("peft_type must be LORA or ADALORA, got " + c.peftType());
      return;
    }
    if (!c.adalora()) {
      return;
    }
    positive(p, "init_r", c.initR());
    positive(p, "target_r", c.targetR());
    if (c.targetR() > c.initR()) {
      p.add(
          "target_r ("
              + c.targetR()
              + ") > init_r ("
              + c.initR()
              + "): AdaLoRA only prunes ranks; lower target_r or raise init_r");
    }
    if (c.tinit() < 0 || c.tfinal() < 0) {
      p.add("tinit and tfinal must be ≥ 0");
    }
    positive(p, "deltaT", c.deltaT());
    if (!(c.beta1() > 0 && c.beta1() < 1) || !(c.beta2() > 0 && c.beta2() < 1)) {
      p.add("beta1 and beta2 (AdaLoRA's importance EMAs) must be in (0, 1)");
    }
    if (!(c.orthRegWeight() > 0)) {
      p.add("orth_reg_weight must be > 0 (PEFT refuses 0), got " + c.orthRegWeight());
    }
    if (c.totalStep() <= 0) {
      p.add(
          "total_step is not set: AdaLoRA's budget schedule needs the run's number of optimizer"
              + " steps (set total_step = max_steps, or epochs x steps per epoch)");
    } else if (c.totalStep() <= c.tinit() + c.tfinal()) {
      p.add(
          "total_step ("
              + c.totalStep()
              + ") must be larger than tinit + tfinal ("
              + (c.tinit() + c.tfinal())
              + "): the budget would never decrease");
    }
  }

  private static void required(List<String> p, String key, String value, String what) {
    if (value == null || value.isBlank()) {
      p.add("'" + key + "' is required: " + what);
    }
  }

  private static void positive(List<String> p, String key, int value) {
    if (value <= 0) {
      p.add(key + " must be ≥ 1, got " + value);
    }
  }

  private static void subset(List<String> p, String key, List<String> values, Set<String> allowed) {
    if (values == null) {
      p.add(key + " must be a list (or a comma-separated string)");
      return;
    }
    for (String v : values) {
      if (!allowed.contains(v)) {
        p.add(key + ": '" + v + "' is not one of " + new java.util.TreeSet<>(allowed));
      }
    }
  }

  private static void oneOf(List<String> p, String key, String value, Set<String> allowed) {
    if (value == null || !allowed.contains(value)) {
      p.add(key + " must be one of " + new java.util.TreeSet<>(allowed) + ", got " + value);
    }
  }
}
