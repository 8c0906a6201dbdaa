package dev.danlu.launch.preflight;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.launch.RankWork;
import dev.danlu.train.config.ConfigException;
import dev.danlu.train.config.ConfigLoader;
import dev.danlu.train.config.TrainConfig;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.apache.spark.SparkConf;

/**
 * Driver-side checks made before any executor is asked for: the config binds, the model, dataset
 * and tokenizer exist and agree, the RankWork class loads, {@code ddp_backend=nccl} comes with a
 * CUDA build (the driver runs the same jar as the executors). Every problem is collected and
 * reported at once, because a queued cluster job that fails on its first step wastes an operator's
 * hour.
 */
public final class Preflight {
  /** The manifest file a committed dataset has at its root (written last by {@code danlu prep}). */
  public static final String MANIFEST = "manifest.json";

  private static final ObjectMapper JSON = new ObjectMapper();

  private Preflight() {}

  /** A config that passed: its bound form, its text, and warnings for ignored keys. */
  public record Checked(TrainConfig config, String yaml, String source, List<String> warnings) {}

  /** Checks everything that needs no cluster; throws {@link PreflightException} listing it all. */
  public static Checked checkInputs(Path configFile, List<String> overrides, String workClass) {
    String yaml;
    try {
      yaml = Files.readString(configFile, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new PreflightException(
          configFile + ": cannot read the training config (" + e + "); pass --config <yaml>");
    }
    ConfigLoader.Loaded loaded;
    try {
      loaded = ConfigLoader.load(yaml, configFile.toString(), overrides);
    } catch (ConfigException e) {
      throw new PreflightException(e.getMessage());
    }
    TrainConfig c = loaded.config();
    List<String> problems = new ArrayList<>();
    JsonNode model = checkModel(Path.of(c.modelNameOrPath()), problems);
    JsonNode manifest = checkDataset(Path.of(c.datasetDir()), problems);
    if (model != null && manifest != null) {
      checkVocabulary(c, model, manifest, problems);
    }
    checkWorkClass(workClass, problems);
    try {
      dev.danlu.train.recipe.Recipes.forConfig(c); // stage names a recipe on the class path
    } catch (ConfigException e) {
      problems.add(e.getMessage());
    }
    if (c.peftPath() != null
        && !c.peftPath().isBlank()
        && !Files.isRegularFile(Path.of(c.peftPath()).resolve("adapter_config.json"))) {
      problems.add(
          "peft_path: "
              + Path.of(c.peftPath()).toAbsolutePath()
              + " has no adapter_config.json (a PEFT adapter directory, e.g. pt_lora_model)");
    }
    if ("nccl".equals(c.ddpBackend()) && !dev.danlu.train.comm.DdpBackend.cudaBuild()) {
      problems.add(dev.danlu.train.comm.DdpBackend.NO_CUDA_BUILD);
    }
    if (!problems.isEmpty()) {
      throw new PreflightException(
          "cannot start training with " + configFile + ":\n  - " + String.join("\n  - ", problems));
    }
    return new Checked(c, yaml, configFile.toString(), loaded.warnings());
  }

  private static JsonNode checkModel(Path dir, List<String> problems) {
    if (!Files.isDirectory(dir)) {
      problems.add(
          "model_name_or_path: "
              + dir.toAbsolutePath()
              + " is not a directory (a Hugging Face LLaMA directory with config.json and"
              + " *.safetensors; paths are read on the driver and on every executor)");
      return null;
    }
    Path config = dir.resolve("config.json");
    if (!Files.isRegularFile(config)) {
      problems.add("model_name_or_path: " + config.toAbsolutePath() + " is missing");
      return null;
    }
    try {
      JsonNode n = JSON.readTree(config.toFile());
      if (!n.path("vocab_size").canConvertToInt()) {
        problems.add(config + ": no integer vocab_size");
        return null;
      }
      return n;
    } catch (IOException e) {
      problems.add(config + ": not readable JSON: " + e.getMessage());
      return null;
    }
  }

  private static JsonNode checkDataset(Path dir, List<String> problems) {
    if (!Files.isDirectory(dir)) {
      problems.add(
          "dataset_dir: "
              + dir.toAbsolutePath()
              + " is not a directory (prepare one with `danlu prep`)");
      return null;
    }
    Path manifest = dir.resolve(MANIFEST);
    if (!Files.isRegularFile(manifest)) {
      problems.add(
          "dataset_dir: "
              + manifest.toAbsolutePath()
              + " is missing: the dataset was never committed (an interrupted `danlu prep`?)");
      return null;
    }
    try {
      return JSON.readTree(manifest.toFile());
    } catch (IOException e) {
      problems.add(manifest + ": not readable JSON: " + e.getMessage());
      return null;
    }
  }

  /**
   * The tokenizer ↔ shards ↔ model vocabulary check. The shards' manifest records the tokenizer's
   * sha256 and vocabulary size under {@code params} (data-prep's {@code Manifest.Params}); a field
   * the manifest does not have is not checked.
   */
  static void checkVocabulary(
      TrainConfig c, JsonNode model, JsonNode manifest, List<String> problems) {
    JsonNode params = manifest.path("params");
    int modelVocab = model.path("vocab_size").asInt();
    if (params.path("vocabSize").canConvertToInt()) {
      int shardVocab = params.get("vocabSize").asInt();
      boolean resizes =
          c.modulesToSave().contains("embed_tokens") && c.modulesToSave().contains("lm_head");
      if (shardVocab > modelVocab && !resizes) {
        problems.add(
            "vocabulary: the shards were tokenized with "
                + shardVocab
                + " pieces but the model has vocab_size "
                + modelVocab
                + " and modules_to_save does not train embed_tokens and lm_head, so the new"
                + " rows could not be learned; add them to modules_to_save or re-run prep with"
                + " the model's tokenizer");
      }
    }
    Path tokenizer = tokenizerFile(c);
    if (params.path("tokenizerSha256").isTextual() && tokenizer != null) {
      String expected = params.get("tokenizerSha256").asText();
      String actual = sha256(tokenizer, problems);
      if (actual != null && !actual.equalsIgnoreCase(expected)) {
        problems.add(
            "tokenizer: "
                + tokenizer
                + " (sha256 "
                + actual.substring(0, 12)
                + "…) is not the tokenizer the shards in "
                + c.datasetDir()
                + " were made with ("
                + params.path("tokenizerFile").asText("?")
                + ", sha256 "
                + expected.substring(0, Math.min(12, expected.length()))
                + "…); re-run `danlu prep` with this tokenizer or set tokenizer_name_or_path");
      }
    }
  }

  /** tokenizer_name_or_path (a file, or a directory holding tokenizer.model), else the model's. */
  private static Path tokenizerFile(TrainConfig c) {
    String name = c.tokenizerNameOrPath();
    Path p = Path.of(name == null || name.isBlank() ? c.modelNameOrPath() : name);
    if (Files.isDirectory(p)) {
      for (String f : List.of("tokenizer.model", "tokenizer.json")) {
        if (Files.isRegularFile(p.resolve(f))) {
          return p.resolve(f);
        }
      }
      return null;
    }
    return Files.isRegularFile(p) ? p : null;
  }

  private static String sha256(Path file, List<String> problems) {
    try (InputStream in =
        new DigestInputStream(Files.newInputStream(file), MessageDigest.getInstance("SHA-256"))) {
      in.transferTo(java.io.OutputStream.nullOutputStream());
      return HexFormat.of().formatHex(((DigestInputStream) in).getMessageDigest().digest());
    } catch (IOException | NoSuchAlgorithmException e) {
      problems.add(file + ": cannot read: " + e.getMessage());
      return null;
    }
  }

  private static void checkWorkClass(String workClass, List<String> problems) {
    try {
      Class<?> c = Class.forName(workClass);
      if (!RankWork.class.isAssignableFrom(c)) {
        problems.add("--work-class " + workClass + " does not implement " + RankWork.class);
      } else {
        c.getDeclaredConstructor();
      }
    } catch (ClassNotFoundException e) {
      problems.add(
          "--work-class "
              + workClass
              + " is not on the driver's classpath (is it in the danlu jar you submitted?)");
    } catch (NoSuchMethodException e) {
      problems.add("--work-class " + workClass + " has no public no-argument constructor");
    }
  }

  /**
   * Checks the cluster configuration against the world size; needs the Spark conf but no job.
   * Barrier stages refuse dynamic allocation, and a world size above what the configuration can
   * ever provide would otherwise wait for slots that never come.
   */
  public static void checkCluster(SparkConf conf, int worldSize) {
    if (conf.getBoolean("spark.dynamicAllocation.enabled", false)) {
      throw new PreflightException(
          "spark.dynamicAllocation.enabled=true: Spark's barrier mode refuses dynamic allocation;"
              + " submit with --conf spark.dynamicAllocation.enabled=false and"
              + " spark.executor.instances");
    }
    int promised = dev.danlu.launch.barrier.SlotCounter.promisedSlots(conf);
    if (promised >= 0 && worldSize > promised) {
      throw new PreflightException(
          "world_size "
              + worldSize
              + " is larger than the "
              + promised
              + " barrier slots this submission can ever have (spark.executor.instances="
              + conf.get("spark.executor.instances")
              + " × "
              + dev.danlu.launch.barrier.SlotCounter.perExecutor(conf)
              + " tasks per executor from spark.executor.cores / spark.task.cpus"
              + " and GPU amounts); lower world_size or request more executors");
    }
  }
}
