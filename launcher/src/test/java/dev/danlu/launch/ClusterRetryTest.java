package dev.danlu.launch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.launch.barrier.TrainingLauncher;
import dev.danlu.launch.smoke.RingSmokeWork;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
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
 * 2 Workers + 2 executors, each its own JVM): a 2-rank run during which one executor JVM is killed
 * with SIGKILL finishes through the driver's retry, with the same final state as the uninterrupted
 * computation; progress is read from the Spark UI while the tasks run.
 */
@Tag("cluster")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ClusterRetryTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int STEPS = 30;
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
    TrainFixture f = new TrainFixture(Files.createDirectories(tmp.resolve("run")), 2, STEPS);
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
            .set("spark.executorEnv.DANLU_SMOKE_STEP_MILLIS", "300")
            .set("spark.executorEnv.SPARK_LOCAL_IP", "127.0.0.1")
            // GPU scheduling as on a GPU cluster: one (fake) GPU per executor and per task.
            .set("spark.executor.resource.gpu.amount", "1")
            .set("spark.task.resource.gpu.amount", "1");
    ByteArrayOutputStream console = new ByteArrayOutputStream();
    PrintStream out = new PrintStream(console, true, StandardCharsets.UTF_8);
    try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
      String ui = jsc.sc().uiWebUrl().get();
      String app = jsc.sc().applicationId();
      TrainingLauncher.Plan plan =
          new TrainingLauncher.Plan(
              RingSmokeWork.class.getName(),
              2,
              3,
              Files.readString(f.config),
              f.config.toString(),
              List.of(),
              Duration.ofSeconds(60),
              Duration.ofSeconds(1));
      try (TrainingLauncher launcher = new TrainingLauncher(jsc, plan, out)) {
        LiveProgressTest.get(ui + "/api/v1/applications/" + app + "/jobs"); // warm up Jersey
        CompletableFuture<TrainingLauncher.Result> run =
            CompletableFuture.supplyAsync(
                () -> {
                  try {
                    return launcher.run();
                  } catch (Exception e) {
                    throw new IllegalStateException(e);
                  }
                });

        // Progress in the Spark UI while the barrier tasks are running.
        JsonNode live = null;
        long deadline = System.currentTimeMillis() + 60_000;
        while (live == null && System.currentTimeMillis() < deadline && !run.isDone()) {
          JsonNode t = JSON.readTree(LiveProgressTest.get(ui + "/training/json/"));
          if (t.get("step").asLong() >= 6 && t.get("ranksReporting").asInt() == 2) {
            JsonNode jobs =
                JSON.readTree(LiveProgressTest.get(ui + "/api/v1/applications/" + app + "/jobs"));
            assertEquals("RUNNING", jobs.get(0).get("status").asText(), jobs.toString());
            live = t;
          } else {
            Thread.sleep(200);
          }
        }
        assertTrue(live != null, "no progress seen in the UI;\n" + console);
        assertFalse(run.isDone());

        List<ProcessHandle> executors = cluster.executors();
        assertEquals(2, executors.size(), "executor JVMs under the workers");
        ProcessHandle victim = executors.get(1);
        System.out.println("killing executor pid " + victim.pid() + " at step " + live.get("step"));
        assertTrue(victim.destroyForcibly()); // SIGKILL
        victim.onExit().get(10, TimeUnit.SECONDS);

        TrainingLauncher.Result result = run.get(90, TimeUnit.SECONDS);
        assertEquals(2, result.attempts(), console.toString());
        JsonNode r = JSON.readTree(f.output.resolve(RingSmokeWork.RESULT_FILE).toFile());
        assertTrue(r.get("resumedFrom").isTextual(), "attempt 2 resumed: " + r);
        String[] values = {r.get("values").get(0).asText(), r.get("values").get(1).asText()};
        assertArrayEquals(TrainFixture.expectedValues(7, 2, STEPS), values);
        // Each rank got its own GPU from BarrierTaskContext.resources(): worker i owns GPU i.
        String summaries = String.join("\n", result.rankSummaries());
        // Executor logs carry rank-prefixed lines, from the launcher and from the reports.
        String logs = cluster.executorLogs();
        for (String line :
            List.of(
                "[rank 0/2 attempt 0] listening on 127.0.0.1:",
                "[rank 1/2 attempt 1] step " + STEPS + "/" + STEPS + " loss",
                "[rank 0/2 attempt 1] resuming from")) {
          assertTrue(logs.contains(line), "executor logs lack '" + line + "'");
        }
        assertTrue(summaries.contains(" gpus [0]") && summaries.contains(" gpus [1]"), summaries);
      }
    } finally {
      System.out.println(console.toString(StandardCharsets.UTF_8));
    }
    String text = console.toString(StandardCharsets.UTF_8);
    assertTrue(text.contains("attempt 1 failed"), text);
    // The cause names the lost executor, or the surviving rank that lost its ring peer.
    assertTrue(
        text.contains("executor lost: Command exited with code 137")
            || text.matches("(?s).*RankFailure: rank [01]/2 \\(attempt 0.*"),
        text);
  }
}
