package dev.danlu.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.danlu.launch.preflight.Preflight;
import dev.danlu.launch.smoke.RingSmokeWork;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bad input fails on the driver before any Spark job (and for input errors before a Spark context
 * even exists), with a message naming the problem.
 */
class PreflightTest {
  @TempDir Path tmp;

  /** Counts contexts made and jobs started in them. */
  private final AtomicInteger contexts = new AtomicInteger();

  private final AtomicInteger jobs = new AtomicInteger();

  /** A refused input: exit 1 (nothing was submitted), one message, no stack trace. */
  private String failWith(String... extra) {
    String m = exitWith(1, extra);
    assertTrue(m.startsWith("danlu train: "), m);
    assertFalse(m.contains("\tat "), "no stack trace:\n" + m);
    return m;
  }

  /** A command-line mistake: exit 2 and the usage. */
  private String usageError(String... extra) {
    String m = exitWith(2, extra);
    assertTrue(m.contains("Usage: danlu train"), m);
    return m;
  }

  private String exitWith(int expected, String... extra) {
    List<String> args = new ArrayList<>(List.of(extra));
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int exit =
        TrainCommand.run(
            args.toArray(String[]::new),
            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8),
            conf -> {
              contexts.incrementAndGet();
              JavaSparkContext jsc = new JavaSparkContext(conf.set("spark.ui.enabled", "false"));
              jsc.sc()
                  .addSparkListener(
                      new SparkListener() {
                        @Override
                        public void onJobStart(SparkListenerJobStart jobStart) {
                          jobs.incrementAndGet();
                        }
                      });
              return jsc;
            });
    String message = err.toString(StandardCharsets.UTF_8);
    System.out.println(message);
    assertEquals(expected, exit, message);
    assertEquals(0, jobs.get(), "no Spark job may run");
    return message;
  }

  private String[] args(TrainFixture f, String... overrides) {
    List<String> a =
        new ArrayList<>(
            List.of(
                "--config", f.config.toString(), "--work-class", RingSmokeWork.class.getName()));
    a.addAll(List.of(overrides));
    return a.toArray(String[]::new);
  }

  @Test
  void commandLineMistakesAreUsageErrors() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 4);
    String m = usageError("learning_rate=1e-4");
    assertTrue(m.contains("Missing required option: '--config=<yaml>'"), m);
    m = usageError("--config", f.config.toString(), "--max-atempts", "2");
    assertTrue(m.contains("Unknown option: '--max-atempts'"), m);
    assertTrue(m.contains("Possible solutions: --master, --max-attempts"), m);
    m = usageError("--config", f.config.toString(), "--max-attempts", "0");
    assertTrue(m.contains("option '--max-attempts': '0' is not a whole number ≥ 1"), m);
    m = usageError("--config", f.config.toString(), "--learning_rate=1e-4");
    assertTrue(m.contains("Unknown option: '--learning_rate=1e-4'"), m);
    assertTrue(m.contains("without dashes, e.g. learning_rate=1e-4"), m);
    m = usageError("--config", f.config.toString(), "learning_rate");
    assertTrue(m.contains("'learning_rate' is not a config override: expected key=value"), m);
    assertEquals(0, contexts.get());
  }

  @Test
  void theDefaultWorkClassIsTheTrainerAdapterAndPassesTheCheck() throws Exception {
    assertEquals(
        dev.danlu.launch.trainer.TrainerRankWork.class.getName(), TrainCommand.DEFAULT_WORK_CLASS);
    TrainFixture f = new TrainFixture(tmp, 2, 4);
    // no PreflightException: the class loads, implements RankWork, has a no-arg constructor
    Preflight.checkInputs(f.config, List.of(), TrainCommand.DEFAULT_WORK_CLASS);
  }

  @Test
  void aWorkClassMissingFromTheClasspathIsNamed() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 4);
    String m =
        failWith("--config", f.config.toString(), "--work-class", "dev.danlu.launch.NoSuchWork");
    assertTrue(m.contains("dev.danlu.launch.NoSuchWork is not on the driver's classpath"), m);
  }

  @Test
  void ncclWithACpuOnlyJarFailsOnTheDriver() throws Exception {
    assumeFalse(dev.danlu.train.comm.DdpBackend.cudaBuild(), "this is a mvn -Pcuda build");
    TrainFixture f = new TrainFixture(tmp, 2, 4);
    String m = failWith(args(f, "ddp_backend=nccl"));
    assertTrue(m.contains("ddp_backend=nccl") && m.contains("mvn -Pcuda"), m);
    assertEquals(0, contexts.get(), "no Spark context before the inputs are checked");
  }

  @Test
  void unknownConfigKeyIsNamedWithItsFix() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 4);
    String m = failWith(args(f, "learning_rte=1e-4"));
    assertTrue(m.contains("unknown key 'learning_rte'"), m);
    assertTrue(m.contains("did you mean 'learning_rate'"), m);
    assertEquals(0, contexts.get(), "no Spark context before the inputs are checked");
  }

  @Test
  void aStageWithoutARecipeAndAMissingPeftPathAreNamedBeforeSparkStarts() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 4);
    String m = failWith(args(f, "stage=stf", "peft_path=" + tmp.resolve("no-adapter")));
    assertTrue(m.contains("stage: 'stf' is not a recipe; known stages: [dpo, ppo, pt, rm, sft"), m);
    assertTrue(m.contains("peft_path: " + tmp.resolve("no-adapter") + " has no adapter_config"), m);
    assertEquals(0, contexts.get(), "no Spark context before the inputs are checked");
  }

  @Test
  void missingModelDirectory() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 4);
    String m = failWith(args(f, "model_name_or_path=" + tmp.resolve("no-such-model")));
    assertTrue(m.contains("model_name_or_path: " + tmp.resolve("no-such-model")), m);
    assertTrue(m.contains("is not a directory"), m);
    assertEquals(0, contexts.get());
  }

  @Test
  void modelDirectoryWithoutConfigJson() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 4);
    Files.delete(f.model.resolve("config.json"));
    String m = failWith(args(f));
    assertTrue(m.contains(f.model.resolve("config.json") + " is missing"), m);
  }

  @Test
  void uncommittedDatasetHasNoManifest() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 4);
    Files.delete(f.dataset.resolve("manifest.json"));
    String m = failWith(args(f));
    assertTrue(m.contains("dataset_dir: " + f.dataset.resolve("manifest.json") + " is missing"), m);
    assertEquals(0, contexts.get());
  }

  @Test
  void shardsMadeWithAnotherTokenizer() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 4);
    f.writeManifest("ab".repeat(32), 512);
    String m = failWith(args(f));
    assertTrue(m.contains("tokenizer: " + f.model.resolve("tokenizer.model")), m);
    assertTrue(m.contains("is not the tokenizer the shards"), m);
    assertEquals(0, contexts.get());
  }

  @Test
  void shardVocabularyLargerThanTheModelWithoutTrainedEmbeddings() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 4);
    byte[] tok = Files.readAllBytes(f.model.resolve("tokenizer.model"));
    f.writeManifest(TrainFixture.sha256(tok), 55296);
    String m = failWith(args(f, "modules_to_save="));
    assertTrue(m.contains("tokenized with 55296 pieces but the model has vocab_size 512"), m);
  }

  @Test
  void everyProblemIsReportedAtOnce() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 4);
    Files.delete(f.dataset.resolve("manifest.json"));
    String m =
        failWith(
            "--config",
            f.config.toString(),
            "--work-class",
            "com.example.NoSuchWork",
            "model_name_or_path=" + tmp.resolve("nope"));
    assertTrue(m.contains("model_name_or_path"), m);
    assertTrue(m.contains("manifest.json is missing"), m);
    assertTrue(m.contains("com.example.NoSuchWork is not on the driver's classpath"), m);
  }

  @Test
  void worldSizeLargerThanLocalSlots() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 4);
    String m = failWith(args(f, "world_size=3", "--master", "local[2]"));
    assertTrue(m.contains("world size 3 needs 3 barrier slots"), m);
    assertTrue(m.contains("the cluster has 2"), m);
    assertEquals(1, contexts.get(), "slots are counted on a live context");
  }

  @Test
  void worldSizeLargerThanRequestedExecutorsFailsBeforeAskingForThem() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 4);
    System.setProperty("spark.executor.instances", "2");
    System.setProperty("spark.executor.cores", "4");
    System.setProperty("spark.executor.resource.gpu.amount", "1");
    System.setProperty("spark.task.resource.gpu.amount", "1");
    try {
      String m = failWith(args(f, "world_size=4", "--master", "spark://127.0.0.1:1"));
      assertTrue(m.contains("world_size 4 is larger than the 2 barrier slots"), m);
      assertTrue(m.contains("spark.executor.instances=2 × 1 tasks per executor"), m);
      assertEquals(0, contexts.get(), "no executors are requested");
    } finally {
      for (String k :
          List.of(
              "spark.executor.instances",
              "spark.executor.cores",
              "spark.executor.resource.gpu.amount",
              "spark.task.resource.gpu.amount")) {
        System.clearProperty(k);
      }
    }
  }

  @Test
  void dynamicAllocationIsRefusedUpFront() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 4);
    System.setProperty("spark.dynamicAllocation.enabled", "true");
    try {
      String m = failWith(args(f, "--master", "spark://127.0.0.1:1"));
      assertTrue(m.contains("barrier mode refuses dynamic allocation"), m);
      assertFalse(contexts.get() > 0);
    } finally {
      System.clearProperty("spark.dynamicAllocation.enabled");
    }
  }
}
