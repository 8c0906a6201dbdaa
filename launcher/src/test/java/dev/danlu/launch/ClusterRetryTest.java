package dev.danlu.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.launch.barrier.TrainingLauncher;
import dev.danlu.launch.trainer.TrainerRankWork;
import dev.danlu.train.checkpoint.TrainingCheckpoint;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The acceptance test of the launcher on a real multi-JVM standalone cluster on 127.0.0.1 (Master +
 * 2 Workers + 2 executors, each its own JVM): a 2-rank run of the real trainer (TrainerRankWork on
 * a tiny random-init LLaMA) during which one executor JVM is killed with SIGKILL after a committed
 * checkpoint finishes through the driver's retry with the adapter of an uninterrupted run; progress
 * is read from the Spark UI while the tasks run.
 */
@Tag("cluster")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ClusterRetryTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int STEPS = 16;
  @TempDir static Path tmp;
  private StandaloneCluster cluster;

  @BeforeAll
  void startCluster() throws Exception {
    long t0 = System.nanoTime();
    Path fakeGpus = GpuDiscoveryScriptTest.fakeNvidiaSmi(tmp.resolve("gpus"), "0\\n1\\n");
    cluster = new StandaloneCluster(tmp.resolve("cluster"), 2, 1, fakeGpus);
    System.out.printf(
        "cluster up in %.1fs at %s%n", (System.nanoTime() - t0) / 1e9, cluster.masterUrl);
  }

  @AfterAll
  void stopCluster() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void killedExecutorIsSurvivedByRetryingTheStage() throws Exception {
    Path tokenizer = dev.danlu.testkit.Prereq.shared("fixtures/stories260K/tokenizer.model");
    TinyLlamaRun f =
        new TinyLlamaRun(
            Files.createDirectories(tmp.resolve("run")),
            tokenizer,
            "max_steps: " + STEPS + "\nsave_steps: 2\nsave_total_limit: 3");
    SparkConf conf =
        new SparkConf()
            .setMaster(cluster.masterUrl)
            .setAppName("danlu-cluster-retry")
            .set("spark.driver.host", "127.0.0.1")
            .set("spark.driver.bindAddress", "127.0.0.1")
            .set("spark.ui.port", "0")
            .set("spark.executor.memory", "512m")
            .set("spark.executor.cores", "1")
            .set("spark.cores.max", "2")
            .set("spark.executor.extraClassPath", StandaloneCluster.classPath())
            // a tiny model steps in ~0.1 s: pace it so the kill lands mid-run
            .set("spark.executorEnv.DANLU_STEP_DELAY_MS", "600")
            .set("spark.executorEnv.SPARK_LOCAL_IP", "127.0.0.1")
            .set("spark.executorEnv.OMP_NUM_THREADS", "1")
            // GPU scheduling as on a GPU cluster: one (fake) GPU per executor and per task.
            .set("spark.executor.resource.gpu.amount", "1")
            .set("spark.task.resource.gpu.amount", "1");
    ByteArrayOutputStream console = new ByteArrayOutputStream();
    PrintStream out = new PrintStream(console, true, StandardCharsets.UTF_8);
    TrainingLauncher.Result result;
    try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
      String ui = jsc.sc().uiWebUrl().get();
      String app = jsc.sc().applicationId();
      TrainingLauncher.Plan plan =
          new TrainingLauncher.Plan(
              TrainerRankWork.class.getName(),
              2,
              3,
              Files.readString(f.config),
              f.config.toString(),
              List.of(),
              Duration.ofSeconds(60),
              Duration.ofSeconds(1));
      try (TrainingLauncher launcher = new TrainingLauncher(jsc, plan, out)) {
        LiveProgressTest.get(ui + "/api/v1/applications/" + app + "/jobs"); // warm up Jersey
        CompletableFuture<TrainingLauncher.Result> run = LiveProgressTest.runInBackground(launcher);

        // Progress in the Spark UI while the barrier tasks are running: step, real loss, job row.
        JsonNode live = null;
        long deadline = System.currentTimeMillis() + 90_000;
        while (live == null && System.currentTimeMillis() < deadline && !run.isDone()) {
          JsonNode t = JSON.readTree(LiveProgressTest.get(ui + "/training/json/"));
          if (t.get("step").asLong() >= 3 && t.get("ranksReporting").asInt() == 2) {
            JsonNode jobs =
                JSON.readTree(LiveProgressTest.get(ui + "/api/v1/applications/" + app + "/jobs"));
            assertEquals("RUNNING", jobs.get(0).get("status").asText(), jobs.toString());
            assertTrue(
                jobs.get(0).get("description").asText().contains("2 ranks"), jobs.toString());
            live = t;
          } else {
            Thread.sleep(200);
          }
        }
        assertTrue(live != null, "no progress seen in the UI;\n" + console);
        assertEquals(STEPS, live.get("maxSteps").asLong(), live.toString());
        // the trainer's cross-entropy over 512 pieces: near ln(512) ≈ 6.2 at the start
        double loss = live.get("loss").asDouble();
        assertTrue(loss > 1 && loss < 9, "loss in the UI: " + live);

        // kill -9 one executor once a checkpoint is committed (the COMMITTED marker on disk)
        Optional<Path> ckpt = Optional.empty();
        while (ckpt.isEmpty() && System.currentTimeMillis() < deadline && !run.isDone()) {
          ckpt = TrainingCheckpoint.newestCommitted(f.output);
          Thread.sleep(50);
        }
        assertTrue(ckpt.isPresent(), "no committed checkpoint before the kill;\n" + console);
        assertFalse(run.isDone(), "the run ended before the kill");
        List<ProcessHandle> executors = cluster.executors();
        assertEquals(2, executors.size(), "executor JVMs under the workers");
        ProcessHandle victim = executors.get(1);
        System.out.println(
            "killing executor pid " + victim.pid() + " after " + ckpt.get().getFileName());
        assertTrue(victim.destroyForcibly()); // SIGKILL
        victim.onExit().get(10, TimeUnit.SECONDS);

        result = run.get(150, TimeUnit.SECONDS);
      }
    } catch (Throwable e) {
      // the executors' own lines (stack traces of rank failures) die with the temp dir otherwise
      String logs = cluster.executorLogs();
      System.out.println(
          "executor logs (last 12000 chars):\n"
              + logs.substring(Math.max(0, logs.length() - 12000)));
      throw e;
    } finally {
      System.out.println(console.toString(StandardCharsets.UTF_8));
    }
    assertEquals(2, result.attempts(), console.toString());
    String summaries = String.join("\n", result.rankSummaries());
    assertTrue(summaries.contains(STEPS + " steps"), summaries);
    // Each rank got its own GPU from BarrierTaskContext.resources(): worker i owns GPU i.
    assertTrue(summaries.contains(" gpus [0]") && summaries.contains(" gpus [1]"), summaries);
    // Executor logs carry rank-prefixed lines: rendezvous, steps, and the resume of attempt 2.
    String logs = cluster.executorLogs();
    for (String line :
        List.of(
            "[rank 0/2 attempt 1] listening on 127.0.0.1:",
            // ddp_backend: auto with Spark's GPU [0] but the CPU build of ND4J
            "[rank 0/2 attempt 1] ddp_backend=auto -> tcp (ND4J CPU backend)",
            "[rank 1/2 attempt 2] step " + STEPS + "/" + STEPS + " loss",
            "[rank 0/2 attempt 2] [rank 0] resumed from ")) {
      assertTrue(logs.contains(line), "executor logs lack '" + line + "'");
    }
    Matcher resumed = Pattern.compile("resumed from \\S+ at step (\\d+)").matcher(logs);
    assertTrue(resumed.find() && Long.parseLong(resumed.group(1)) >= 2, "resume step: " + logs);
    String text = console.toString(StandardCharsets.UTF_8);
    assertTrue(text.contains("attempt 1 failed"), text);
    // The cause names the lost executor, or the surviving rank that lost its ring peer.
    assertTrue(
        text.contains("executor lost: Command exited with code 137")
            || text.matches("(?s).*RankFailure: rank [01]/2 \\(attempt 1.*"),
        text);

    // The final adapter equals an uninterrupted run of the same config (same TCP ring, 2 ranks).
    long t0 = System.nanoTime();
    Map<String, float[]> reference =
        f.trainReference(
            tmp.resolve("reference"), new PrintStream(OutputStream.nullOutputStream()));
    Map<String, float[]> trained = TinyLlamaRun.adapter(f.output);
    double err = dev.danlu.testkit.Floats.relError(trained, reference);
    System.out.printf(
        "uninterrupted reference in %.1fs; killed+retried vs reference: %d tensors, relative"
            + " error %.3e, largest difference %d ulps%n",
        (System.nanoTime() - t0) / 1e9, reference.size(), err, maxUlps(trained, reference));
    assertTrue(
        reference.keySet().stream().anyMatch(k -> k.contains("lora_A")),
        reference.keySet().toString());
    assertTrue(err <= 1e-6, "relative error " + err);
  }

  private static long maxUlps(Map<String, float[]> a, Map<String, float[]> b) {
    long m = 0;
    for (String k : b.keySet()) {
      m = Math.max(m, dev.danlu.testkit.Floats.maxUlpDistance(a.get(k), b.get(k)));
    }
    return m;
  }
}
