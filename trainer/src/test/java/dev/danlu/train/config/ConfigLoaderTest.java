package dev.danlu.train.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigLoaderTest {
  private static final String MINIMAL =
      "model_name_or_path: /m\ndataset_dir: /d\noutput_dir: /o\nmax_steps: 10\n";

  private static Path repo() {
    return Path.of(System.getProperty("danlu.repo.dir", "..")).toAbsolutePath();
  }

  @Test
  void defaultsAreTheReferenceScriptValues() {
    TrainConfig c = ConfigLoader.load(MINIMAL, "t.yaml", List.of()).config();
    assertEquals(2e-4, c.learningRate());
    assertEquals(64, c.loraRank());
    assertEquals(2.0, c.loraScaling());
    assertEquals(0.05, c.loraDropout());
    assertEquals(TrainConfig.SchedulerType.COSINE, c.lrSchedulerType());
    assertEquals(List.of("embed_tokens", "lm_head"), c.modulesToSave());
    assertEquals(7, c.trainable().size());
    assertEquals(8, c.gradientAccumulationSteps());
    assertEquals(16, c.initialScalePower());
    assertEquals(2, c.hysteresis());
  }

  @Test
  void commaSeparatedListsAndOverridesBind() {
    TrainConfig c =
        ConfigLoader.load(
                MINIMAL + "trainable: q_proj, v_proj\n",
                "t.yaml",
                List.of(
                    "learning_rate=1e-4",
                    "fp16=true",
                    "lr_scheduler_type=linear",
                    "modules_to_save=lm_head"))
            .config();
    assertEquals(List.of("q_proj", "v_proj"), c.trainable());
    assertEquals(1e-4, c.learningRate());
    assertTrue(c.fp16());
    assertEquals(TrainConfig.SchedulerType.LINEAR, c.lrSchedulerType());
    assertEquals(List.of("lm_head"), c.modulesToSave());
  }

  @Test
  void unknownKeyNamesLineAndSuggestsTheClosestKey() {
    ConfigException e =
        assertThrows(
            ConfigException.class,
            () -> ConfigLoader.load(MINIMAL + "lerning_rate: 1e-4\n", "conf/x.yaml", List.of()));
    assertTrue(e.getMessage().contains("conf/x.yaml line 5"), e.getMessage());
    assertTrue(e.getMessage().contains("unknown key 'lerning_rate'"), e.getMessage());
    assertTrue(e.getMessage().contains("did you mean 'learning_rate'"), e.getMessage());
  }

  @Test
  void unknownOverrideKeyIsAnErrorToo() {
    ConfigException e =
        assertThrows(
            ConfigException.class,
            () -> ConfigLoader.load(MINIMAL, "t.yaml", List.of("lora_rnak=8", "nonsense")));
    assertTrue(e.getMessage().contains("override lora_rnak"), e.getMessage());
    assertTrue(e.getMessage().contains("did you mean 'lora_rank'"), e.getMessage());
    assertTrue(e.getMessage().contains("expected key=value"), e.getMessage());
  }

  @Test
  void referenceScriptFlagsAreAcceptedWithAWarning() {
    ConfigLoader.Loaded loaded =
        ConfigLoader.load(
            MINIMAL + "deepspeed: ds_zero2_no_offload.json\n",
            "t.yaml",
            List.of("overwrite_output_dir=true"));
    assertEquals(2, loaded.warnings().size());
    assertTrue(loaded.warnings().get(0).contains("'deepspeed' is ignored"));
  }

  @Test
  void wrongTypeNamesTheKeyAndTheAllowedValues() {
    ConfigException e =
        assertThrows(
            ConfigException.class,
            () -> ConfigLoader.load(MINIMAL, "t.yaml", List.of("lr_scheduler_type=cosyne")));
    assertTrue(e.getMessage().contains("lr_scheduler_type"), e.getMessage());
    assertTrue(e.getMessage().contains("allowed: linear, cosine"), e.getMessage());
    ConfigException e2 =
        assertThrows(
            ConfigException.class,
            () -> ConfigLoader.load(MINIMAL + "lora_rank: eight\n", "t.yaml", List.of()));
    assertTrue(e2.getMessage().contains("key 'lora_rank' (t.yaml line 5)"), e2.getMessage());
  }

  @Test
  void everyValidationProblemIsReportedAtOnce() {
    ConfigException e =
        assertThrows(
            ConfigException.class,
            () ->
                ConfigLoader.load(
                    "max_steps: 1\nlora_rank: 0\nfp16: true\nbf16: true\ntrainable: q_proj,qkv\n"
                        + "packing: true\n",
                    "t.yaml",
                    List.of()));
    String m = e.getMessage();
    for (String expected :
        List.of(
            "'model_name_or_path' is required",
            "'dataset_dir' is required",
            "lora_rank must be ≥ 1",
            "fp16 and bf16 are both true",
            "'qkv' is not one of",
            "packing applies to stage sft")) {
      assertTrue(m.contains(expected), "missing '" + expected + "' in:\n" + m);
    }
  }

  @Test
  void bestModelIsRefusedWhereTheValueHeadIsNotCheckpointed() {
    for (String stage : List.of("rm", "ppo")) {
      ConfigException e =
          assertThrows(
              ConfigException.class,
              () ->
                  ConfigLoader.load(
                      MINIMAL
                          + "stage: "
                          + stage
                          + "\neval_steps: 5\nload_best_model_at_end: true\n",
                      "t.yaml",
                      List.of()));
      assertTrue(
          e.getMessage().contains("load_best_model_at_end is not supported for stage " + stage),
          e.getMessage());
    }
  }

  @Test
  void missingFileAndBadYamlAreClear(@TempDir Path dir) throws Exception {
    ConfigException e =
        assertThrows(
            ConfigException.class, () -> ConfigLoader.load(dir.resolve("nope.yaml"), List.of()));
    assertTrue(e.getMessage().contains("nope.yaml: config file does not exist"));
    Path bad = dir.resolve("bad.yaml");
    Files.writeString(bad, "a: 1\n b: [\n");
    ConfigException e2 =
        assertThrows(ConfigException.class, () -> ConfigLoader.load(bad, List.of()));
    assertTrue(e2.getMessage().contains("bad.yaml line"), e2.getMessage());
  }

  @Test
  void hashChangesWithAnyValueAndIsStable() {
    TrainConfig a = ConfigLoader.load(MINIMAL, "t", List.of()).config();
    TrainConfig b = ConfigLoader.load(MINIMAL, "t", List.of()).config();
    TrainConfig c = ConfigLoader.load(MINIMAL, "t", List.of("seed=7")).config();
    assertEquals(ConfigLoader.sha256(a), ConfigLoader.sha256(b));
    assertNotEquals(ConfigLoader.sha256(a), ConfigLoader.sha256(c));
    assertTrue(ConfigLoader.toYaml(a).contains("learning_rate: 2.0E-4"), ConfigLoader.toYaml(a));
  }

  @Test
  void shippedConfigsLoad() throws Exception {
    for (String name :
        List.of(
            "tiny-pretrain.yaml",
            "llama2-7b-pretrain.yaml",
            "tiny-sft.yaml",
            "tiny-rm.yaml",
            "tiny-dpo.yaml",
            "tiny-ppo.yaml",
            "llama2-7b-pt-16k.yaml")) {
      Path file = repo().resolve("conf").resolve(name);
      ConfigLoader.Loaded loaded = ConfigLoader.load(file, List.of());
      assertFalse(loaded.config().outputDir().isBlank());
      assertTrue(loaded.warnings().isEmpty(), loaded.warnings().toString());
      assertTrue(Files.readString(file).startsWith("# "), name + " must start with the command");
    }
    TrainConfig big =
        ConfigLoader.load(repo().resolve("conf/llama2-7b-pretrain.yaml"), List.of()).config();
    assertEquals(64, big.loraRank());
    assertEquals(8, big.globalBatchSize(1));
    assertEquals(50, big.warmupStepsFor(1000));
    TrainConfig longCtx =
        ConfigLoader.load(repo().resolve("conf/llama2-7b-pt-16k.yaml"), List.of()).config();
    assertEquals("linear", longCtx.ropeScaling());
    assertEquals(dev.danlu.train.model.AttentionImpl.TILED, longCtx.attention());
    assertTrue(longCtx.ntk().isNone());
    TrainConfig ppo = ConfigLoader.load(repo().resolve("conf/tiny-ppo.yaml"), List.of()).config();
    assertEquals("ppo", ppo.stage());
    assertEquals(4, ppo.ppoEpochs());
    assertEquals(0, ppo.evalSteps(), "ppo has no validation split to evaluate");
  }

  @Test
  void longContextKeysAreValidated() {
    ConfigException e =
        assertThrows(
            ConfigException.class,
            () ->
                ConfigLoader.load(
                    MINIMAL, "t.yaml", List.of("attn_implementation=flash", "ntk_alpha=-2")));
    assertTrue(e.getMessage().contains("attn_implementation 'flash'"), e.getMessage());
    assertTrue(e.getMessage().contains("ntk_alpha '-2'"), e.getMessage());
    assertEquals(
        dev.danlu.train.model.NtkAlpha.AUTO,
        ConfigLoader.load(MINIMAL, "t.yaml", List.of("ntk_alpha=auto")).config().ntk());
    assertEquals(
        2.0,
        ConfigLoader.load(MINIMAL + "ntk_alpha: 2.0\n", "t.yaml", List.of())
            .config()
            .ntk()
            .alpha());
  }

  @Test
  void sftStageTakesRunSftDefaultsWhereTheFileIsSilent() {
    TrainConfig sft = ConfigLoader.load(MINIMAL + "stage: sft\n", "t.yaml", List.of()).config();
    assertEquals(1e-4, sft.learningRate());
    assertEquals(0.03, sft.warmupRatio());
    assertEquals(0.0, sft.weightDecay());
    assertEquals(100, sft.evalSteps());
    // the stage given as an override decides too; explicit values still win
    TrainConfig o =
        ConfigLoader.load(MINIMAL, "t.yaml", List.of("stage=sft", "learning_rate=3e-4")).config();
    assertEquals(3e-4, o.learningRate());
    assertEquals(0.0, o.weightDecay());
    TrainConfig pt = ConfigLoader.load(MINIMAL, "t.yaml", List.of()).config();
    assertEquals("pt", pt.stage());
    assertEquals(2e-4, pt.learningRate());
    assertEquals(0.01, pt.weightDecay());
    ConfigLoader.Loaded v =
        ConfigLoader.load(MINIMAL + "validation_file: v.json\n", "t.yaml", List.of());
    assertTrue(
        v.warnings().get(0).contains("danlu prep-sft --validation-file"), v.warnings().toString());
  }

  @Test
  void ddpBackendDefaultsToAutoAndRejectsOtherValuesNamingTheAllowedOnes() {
    assertEquals("auto", ConfigLoader.load(MINIMAL, "t.yaml", List.of()).config().ddpBackend());
    assertEquals(
        "nccl",
        ConfigLoader.load(MINIMAL, "t.yaml", List.of("ddp_backend=nccl")).config().ddpBackend());
    ConfigException e =
        assertThrows(
            ConfigException.class,
            () -> ConfigLoader.load(MINIMAL + "ddp_backend: gloo\n", "t.yaml", List.of()));
    assertTrue(
        e.getMessage().contains("ddp_backend must be one of [auto, nccl, tcp], got gloo"),
        e.getMessage());
  }

  @Test
  void theOldCommunicatorKeyStillBindsAsDdpBackendWithAWarning() {
    ConfigLoader.Loaded l = ConfigLoader.load(MINIMAL + "communicator: tcp\n", "t.yaml", List.of());
    assertEquals("tcp", l.config().ddpBackend());
    assertTrue(
        l.warnings().stream()
            .anyMatch(w -> w.contains("'communicator' is now called 'ddp_backend'")),
        l.warnings().toString());
  }

  @Test
  void aFileSettingBothTheOldAndTheNewNameIsRefusedNamingBothLines() {
    ConfigException e =
        assertThrows(
            ConfigException.class,
            () ->
                ConfigLoader.load(
                    MINIMAL + "communicator: tcp\nddp_backend: nccl\n", "t.yaml", List.of()));
    assertTrue(
        e.getMessage().contains("both 'communicator' (the old name) and 'ddp_backend' are set"),
        e.getMessage());
    assertTrue(e.getMessage().contains("t.yaml lines "), e.getMessage());
  }
}
