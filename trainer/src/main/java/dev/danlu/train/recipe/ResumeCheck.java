package dev.danlu.train.recipe;

import dev.danlu.train.checkpoint.TrainerState;
import dev.danlu.train.checkpoint.TrainingCheckpoint;
import dev.danlu.train.config.ConfigLoader;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.data.BatchPlan;
import dev.danlu.train.data.TrainData;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraModule;
import dev.danlu.train.zero.Zero2Optimizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * What this run is (model, LoRA shape, dataset, global batch): written into every checkpoint's
 * {@link TrainerState}, and compared with a checkpoint before resuming from it. A mismatch is
 * refused with the checkpoint directory, the field and both values; a changed config hash alone
 * (another world size, logging interval, ...) only warns.
 */
final class ResumeCheck {
  private final TrainConfig cfg;
  private final String fingerprint;
  private final TrainerState.LoraShape lora;
  private final long manifestVersion;
  private final String manifestSha;
  private final BatchPlan plan;
  private final int world;
  private final long trainable;
  private final long total;
  private final long warmup;
  private final String baseDtype;

  private ResumeCheck(
      TrainConfig cfg,
      String fingerprint,
      TrainerState.LoraShape lora,
      long manifestVersion,
      String manifestSha,
      BatchPlan plan,
      int world,
      long trainable,
      String baseDtype,
      long total) {
    this.cfg = cfg;
    this.fingerprint = fingerprint;
    this.lora = lora;
    this.manifestVersion = manifestVersion;
    this.manifestSha = manifestSha;
    this.plan = plan;
    this.world = world;
    this.trainable = trainable;
    this.baseDtype = baseDtype;
    this.total = total;
    this.warmup = cfg.warmupStepsFor((int) total);
  }

  /** The checks of a run of {@code total} optimizer steps (PPO: iterations × steps each). */
  static ResumeCheck of(
      TrainConfig cfg, ModelSetup model, TrainData data, BatchPlan plan, int world, long total) {
    LoraAdapter ad = model.adapter();
    List<String> targets = new ArrayList<>();
    for (LoraModule m : ad.config.targets()) {
      targets.add(m.projName);
    }
    List<String> saved = new ArrayList<>();
    if (ad.embedTokens != null) {
      saved.add("embed_tokens");
    }
    if (ad.lmHead != null) {
      saved.add("lm_head");
    }
    TrainerState.LoraShape shape =
        new TrainerState.LoraShape(
            ad.config.rank(),
            ad.config.alpha(),
            targets,
            saved,
            ad.vocabSize(),
            ad.svd != null ? "ADALORA" : "LORA");
    return new ResumeCheck(
        cfg,
        model.fingerprint(),
        shape,
        data.version(),
        data.sha256(),
        plan,
        world,
        ad.numTrainable(),
        torchName(model.weights().storageType()),
        total);
  }

  /** torch's name of a storage dtype, as torch_dtype spells it. */
  private static String torchName(org.nd4j.linalg.api.buffer.DataType t) {
    return switch (t) {
      case HALF -> "float16";
      case BFLOAT16 -> "bfloat16";
      case FLOAT -> "float32";
      default -> t.name().toLowerCase(java.util.Locale.ROOT);
    };
  }

  TrainerState state(long step, Zero2Optimizer opt, double lastLoss) {
    return state(step, opt, lastLoss, null);
  }

  /** As above, with the best-model / early-stopping state (null when not asked for). */
  TrainerState state(long step, Zero2Optimizer opt, double lastLoss, TrainerState.Best best) {
    List<String> files = new ArrayList<>();
    for (int r = 0; r < world; r++) {
      files.add(TrainingCheckpoint.optimizerFileName(r, world));
    }
    return new TrainerState(
        TrainerState.FORMAT_VERSION,
        step,
        step,
        plan.epochOf(Math.max(0, step - 1)),
        total,
        warmup,
        cfg.lrSchedulerType().name().toLowerCase(java.util.Locale.ROOT),
        cfg.learningRate(),
        opt.appliedSteps(),
        plan.globalBatch(),
        world,
        cfg.seed(),
        cfg.seed(),
        opt.scaler().scale(),
        opt.scaler().state(),
        ConfigLoader.sha256(cfg),
        cfg.modelNameOrPath(),
        fingerprint,
        lora,
        manifestVersion,
        manifestSha,
        trainable,
        files,
        lastLoss,
        baseDtype,
        best);
  }

  /**
   * Throws {@link IllegalStateException} if {@code st} (read from {@code dir}) cannot continue in
   * this run; returns a warning for differences that do not change the result's meaning.
   */
  Optional<String> verify(Path dir, TrainerState st) {
    if (st.formatVersion() != TrainerState.FORMAT_VERSION) {
      refuse(dir, "format_version", st.formatVersion(), TrainerState.FORMAT_VERSION);
    }
    same(
        dir,
        "lora.peft_type (a checkpoint continues only with the adapter type it was written by)",
        st.lora().type(),
        lora.type());
    same(
        dir,
        "model_fingerprint (base model " + cfg.modelNameOrPath() + ")",
        st.modelFingerprint(),
        fingerprint);
    same(dir, "lora.r", st.lora().r(), lora.r());
    same(dir, "lora.lora_alpha", st.lora().loraAlpha(), lora.loraAlpha());
    same(dir, "lora.target_modules", st.lora().targetModules(), lora.targetModules());
    same(dir, "lora.modules_to_save", st.lora().modulesToSave(), lora.modulesToSave());
    same(dir, "lora.vocab_rows", st.lora().vocabRows(), lora.vocabRows());
    same(
        dir,
        "dataset_manifest_sha256 (dataset "
            + cfg.datasetDir()
            + ", manifest version "
            + manifestVersion
            + " now, "
            + st.datasetManifestVersion()
            + " in the checkpoint)",
        st.datasetManifestSha256(),
        manifestSha);
    if (st.globalBatchSize() != plan.globalBatch()) {
      throw new IllegalStateException(
          "cannot resume from "
              + dir
              + ": global_batch_size is "
              + st.globalBatchSize()
              + " in the checkpoint but "
              + plan.globalBatch()
              + " in this run (per_device_train_batch_size x gradient_accumulation_steps x world"
              + " size); the data position is a step count, so keep the global batch: e.g."
              + " gradient_accumulation_steps = "
              + st.globalBatchSize()
              + " / ("
              + cfg.perDeviceTrainBatchSize()
              + " x "
              + world
              + ")");
    }
    same(dir, "trainable_parameters", st.trainableParameters(), trainable);
    List<String> notes = new ArrayList<>();
    String sha = ConfigLoader.sha256(cfg);
    if (!sha.equals(st.configSha256())) {
      notes.add(
          "note: "
              + dir
              + " was written with another config (config_sha256 "
              + st.configSha256()
              + ", now "
              + sha
              + "); model, LoRA shape, data and global batch match, continuing");
    }
    if (st.baseWeightsDtype() != null && !st.baseWeightsDtype().equals(baseDtype)) {
      // legitimate (a GPU run resumed on CPU with torch_dtype=auto), but the frozen weights the
      // adapter is trained against are now rounded differently: the run continues, not exactly
      notes.add(
          "note: "
              + dir
              + " was trained against "
              + st.baseWeightsDtype()
              + " base weights, this run stores them as "
              + baseDtype
              + " (torch_dtype); set torch_dtype="
              + st.baseWeightsDtype()
              + " to continue on exactly the same weights");
    }
    return notes.isEmpty() ? Optional.empty() : Optional.of(String.join("\n", notes));
  }

  private static void same(Path dir, String field, Object inCkpt, Object now) {
    if (!Objects.equals(inCkpt, now)) {
      refuse(dir, field, inCkpt, now);
    }
  }

  private static void refuse(Path dir, String field, Object inCkpt, Object now) {
    throw new IllegalStateException(
        "cannot resume from "
            + dir
            + ": "
            + field
            + " is "
            + inCkpt
            + " in the checkpoint but "
            + now
            + " in this run; use another output_dir to start afresh, or restore the matching"
            + " model/config/dataset");
  }
}
