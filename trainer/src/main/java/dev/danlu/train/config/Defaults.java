package dev.danlu.train.config;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Default values: the reference run_pt.sh and DeepSpeed fp16 settings (REFERENCE.md), and Hugging
 * Face TrainingArguments defaults for keys run_pt.sh does not set. Paths have no default.
 */
final class Defaults {
  private Defaults() {}

  static ObjectNode tree() {
    return tree("pt");
  }

  /**
   * The defaults of a stage: pretraining's are run_pt.sh's; {@code sft} takes run_sft.sh's where
   * they differ (REFERENCE.md "Hyperparameters": lr 1e-4, warmup 0.03, no weight decay, eval every
   * 100 steps).
   */
  static ObjectNode tree(String stage) {
    ObjectNode d = base();
    d.put("stage", stage);
    // the preference stages continue from an instruction-tuned model: run_sft.sh's defaults
    if ("sft".equals(stage) || "dpo".equals(stage) || "rm".equals(stage) || "ppo".equals(stage)) {
      d.put("learning_rate", 1e-4);
      d.put("warmup_ratio", 0.03);
      d.put("weight_decay", 0.0);
      // ppo has no validation split to evaluate (its progress is the rollouts' mean reward)
      d.put("eval_steps", "ppo".equals(stage) ? 0 : 100);
    }
    return d;
  }

  private static ObjectNode base() {
    ObjectNode d = JsonNodeFactory.instance.objectNode();
    d.putNull("peft_path");
    d.put("max_seq_length", 0); // 0: the prepared examples as they are (prep-sft's length)
    d.put("group_by_length", false);
    d.put("packing", false);
    d.put("beta", 0.1);
    d.put("pref_loss", "sigmoid");
    d.put("dpo_label_smoothing", 0.0);
    d.putNull("reward_model");
    d.put("ppo_epochs", 4); // TRL's and LLaMA-Factory's
    d.put("ppo_mini_batches", 1);
    d.put("max_new_tokens", 64);
    d.put("init_kl_coef", 0.2); // TRL's PPOConfig defaults from here on
    d.put("adap_kl_ctrl", true);
    d.put("ppo_target", 6.0);
    d.put("kl_horizon", 10000.0);
    d.put("gamma", 1.0);
    d.put("lam", 0.95);
    d.put("cliprange", 0.2);
    d.put("cliprange_value", 0.2);
    d.put("vf_coef", 0.1);
    d.putNull("model_name_or_path");
    d.putNull("tokenizer_name_or_path");
    d.putNull("dataset_dir");
    d.putNull("output_dir");
    d.put("max_steps", -1);
    d.put("num_train_epochs", 1.0);
    d.put("seed", 42);
    d.put("block_size", 0); // 0: take the block size of the prepared dataset
    d.put("per_device_train_batch_size", 1);
    d.put("per_device_eval_batch_size", 1);
    d.put("gradient_accumulation_steps", 8);
    d.put("learning_rate", 2e-4);
    d.put("lr_scheduler_type", "cosine");
    d.put("warmup_ratio", 0.05);
    d.put("warmup_steps", 0);
    d.put("weight_decay", 0.01);
    d.put("adam_beta1", 0.9);
    d.put("adam_beta2", 0.999);
    d.put("adam_epsilon", 1e-8);
    d.put("max_grad_norm", 1.0);
    d.put("lora_rank", 64);
    d.put("lora_alpha", 128.0);
    d.put("lora_dropout", 0.05);
    d.set(
        "trainable",
        JsonNodeFactory.instance
            .arrayNode()
            .addAll(
                TrainConfig.DEFAULT_TRAINABLE.stream()
                    .map(JsonNodeFactory.instance::textNode)
                    .toList()));
    d.set(
        "modules_to_save", JsonNodeFactory.instance.arrayNode().add("embed_tokens").add("lm_head"));
    d.put("vocab_resize_init", "normal");
    d.put("torch_dtype", "auto");
    d.put("fp16", false);
    d.put("bf16", false);
    d.put("gradient_checkpointing", false);
    d.put("attn_implementation", "auto");
    d.putNull("rope_scaling");
    d.put("ntk_alpha", "none");
    d.put("initial_scale_power", 16);
    d.put("loss_scale_window", 100);
    d.put("hysteresis", 2);
    d.put("min_loss_scale", 1e-10);
    d.put("logging_steps", 10);
    d.put("logging_first_step", true);
    d.put("save_steps", 200);
    d.put("save_total_limit", 3);
    d.put("eval_steps", 0);
    d.put("world_size", 0); // 0: one rank per task slot / GPU the launcher finds
    d.put("backend", "auto");
    d.put("ddp_backend", "auto"); // nccl on the CUDA backend with a GPU per rank, else tcp
    d.put("reduce_bucket_mb", 64);
    d.put("overlap_comm", true);
    d.put("load_best_model_at_end", false);
    d.putNull("metric_for_best_model");
    d.putNull("greater_is_better");
    d.put("early_stopping_patience", 0);
    d.put("early_stopping_threshold", 0.0);
    // PEFT's AdaLoraConfig defaults; init_r / target_r / total_step must suit the run
    d.put("peft_type", "LORA");
    d.put("init_r", 12);
    d.put("target_r", 8);
    d.put("tinit", 0);
    d.put("tfinal", 0);
    d.put("deltaT", 1);
    d.put("beta1", 0.85);
    d.put("beta2", 0.85);
    d.put("orth_reg_weight", 0.5);
    d.put("total_step", 0);
    return d;
  }
}
