package dev.danlu.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.launch.barrier.TrainingLauncher;
import dev.danlu.launch.progress.TrainingMetricsSource;
import dev.danlu.launch.smoke.RingSmokeWork;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * While the barrier tasks are still running, the Spark UI shows training progress: the Training
 * tab's JSON, the running job in the REST API, and the metrics source through the Prometheus
 * servlet. Checked by polling during the run.
 */
class LiveProgressTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient HTTP =
      HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  @TempDir Path tmp;

  static String get(String url) throws Exception {
    HttpResponse<String> r =
        HTTP.send(
            HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30)).build(),
            HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() != 200) {
      throw new AssertionError(url + " → HTTP " + r.statusCode() + ": " + r.body());
    }
    return r.body();
  }

  @Test
  void progressIsVisibleInTheSparkUiWhileTheTaskRuns() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 20);
    SparkConf conf =
        new SparkConf()
            .setMaster("local[2]")
            .setAppName("danlu-live-progress")
            .set("spark.ui.enabled", "true")
            .set("spark.ui.port", "0")
            .set("spark.ui.prometheus.enabled", "true")
            .set(
                "spark.metrics.conf.*.sink.prometheusServlet.class",
                "org.apache.spark.metrics.sink.PrometheusServlet")
            .set("spark.metrics.conf.*.sink.prometheusServlet.path", "/metrics/prometheus");
    ByteArrayOutputStream console = new ByteArrayOutputStream();
    try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
      String ui = jsc.sc().uiWebUrl().get();
      String app = jsc.sc().applicationId();
      TrainingLauncher.Plan plan =
          new TrainingLauncher.Plan(
              RingSmokeWork.class.getName(),
              2,
              1,
              Files.readString(f.config),
              f.config.toString(),
              List.of(),
              Duration.ZERO,
              Duration.ofSeconds(1));
      try (TrainingLauncher launcher =
          new TrainingLauncher(jsc, plan, new PrintStream(console, true, StandardCharsets.UTF_8))) {
        // Warm the UI's REST layer up first (its first request initialises Jersey, seconds on a
        // busy machine), so polling during the run measures the run.
        get(ui + "/api/v1/applications/" + app + "/jobs");
        CompletableFuture<TrainingLauncher.Result> run = runInBackground(launcher);
        JsonNode seen = null;
        long deadline = System.currentTimeMillis() + 30_000;
        while (System.currentTimeMillis() < deadline && !run.isDone()) {
          JsonNode t = JSON.readTree(get(ui + "/training/json/"));
          JsonNode jobs = JSON.readTree(get(ui + "/api/v1/applications/" + app + "/jobs"));
          boolean running =
              jobs.size() == 1 && jobs.get(0).get("status").asText().equals("RUNNING");
          if (running && t.get("step").asLong() >= 3 && t.get("ranksReporting").asInt() == 2) {
            seen = t;
            assertTrue(
                jobs.get(0).get("description").asText().contains("danlu train"), jobs.toString());
            break;
          }
          Thread.sleep(200);
        }
        assertTrue(seen != null, "no live progress seen in /training/json while the job ran");
        assertFalse(run.isDone(), "progress must be seen before the task ends");
        assertEquals(20, seen.get("maxSteps").asLong());
        assertTrue(seen.get("lossCurve").size() >= 3, seen.toString());
        String html = get(ui + "/training/");
        assertTrue(html.contains("Training") && html.contains("<svg"), html);
        String prom = get(ui + "/metrics/prometheus/");
        assertTrue(prom.contains(TrainingMetricsSource.NAME.replace('.', '_') + "_step"), prom);
        assertEquals(
            1,
            scala.jdk.javaapi.CollectionConverters.asJava(
                    SparkEnv.get().metricsSystem().getSourcesByName(TrainingMetricsSource.NAME))
                .size());

        TrainingLauncher.Result result = run.get();
        assertEquals(1, result.attempts());
        assertEquals(20, launcher.board().summary().step());
        assertEquals(20, launcher.board().lossCurve().size());
      }
    }
    String out = console.toString(StandardCharsets.UTF_8);
    assertTrue(out.contains("danlu: attempt 1: step "), out);
  }

  /**
   * One attempt numbering (from 1) on the console, in the job descriptions, on the tab, in the
   * metrics and in the ranks' own reports (the board accepts only the current attempt's).
   */
  @Test
  void attemptsAreNumberedAlikeEverywhere() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 8);
    SparkConf conf =
        new SparkConf()
            .setMaster("local[2]")
            .setAppName("danlu-attempts")
            .set("spark.driver.host", "127.0.0.1")
            .set("spark.driver.bindAddress", "127.0.0.1")
            .set("spark.ui.enabled", "true")
            .set("spark.ui.port", "0");
    ByteArrayOutputStream console = new ByteArrayOutputStream();
    try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
      String ui = jsc.sc().uiWebUrl().get();
      String app = jsc.sc().applicationId();
      TrainingLauncher.Plan plan =
          new TrainingLauncher.Plan(
              dev.danlu.launch.testwork.FailOnceWork.class.getName(),
              2,
              3,
              Files.readString(f.config),
              f.config.toString(),
              List.of(),
              Duration.ZERO,
              Duration.ofMillis(200));
      try (TrainingLauncher launcher =
          new TrainingLauncher(jsc, plan, new PrintStream(console, true, StandardCharsets.UTF_8))) {
        assertEquals(2, launcher.run().attempts());
        JsonNode tab = JSON.readTree(get(ui + "/training/json/"));
        assertEquals(2, tab.get("attempt").asInt(), tab.toString());
        assertEquals(2, tab.get("ranksReporting").asInt(), "attempt 2's ranks were heard");
        assertTrue(tab.get("line").asText().startsWith("attempt 2: step 8/8"), tab.toString());
        List<String> events = new java.util.ArrayList<>();
        tab.get("events").forEach(e -> events.add(e.get("kind").asText() + " " + e.get("attempt")));
        assertTrue(events.contains("attempt-failed 1"), events.toString());
        assertTrue(events.contains("rank-failed 1"), events.toString());
        assertTrue(events.contains("attempt 2"), events.toString());
        assertTrue(events.contains("finished 2"), events.toString());
        JsonNode jobs = JSON.readTree(get(ui + "/api/v1/applications/" + app + "/jobs"));
        List<String> descriptions = new java.util.ArrayList<>();
        jobs.forEach(j -> descriptions.add(j.get("description").asText()));
        assertTrue(
            descriptions.stream().anyMatch(d -> d.contains("attempt 1/3")),
            descriptions.toString());
        assertTrue(
            descriptions.stream().anyMatch(d -> d.contains("attempt 2/3")),
            descriptions.toString());
        Object gauge =
            scala.jdk.javaapi.CollectionConverters.asJava(
                    SparkEnv.get().metricsSystem().getSourcesByName(TrainingMetricsSource.NAME))
                .get(0)
                .metricRegistry()
                .getGauges()
                .get("attempt")
                .getValue();
        assertEquals(2, gauge);
      }
    }
    String out = console.toString(StandardCharsets.UTF_8);
    assertTrue(out.contains("attempt 1/3 (progress: Training tab)"), out);
    assertTrue(out.contains("danlu: attempt 1 failed at step"), out);
    assertTrue(out.contains("attempt 2/3 (progress: Training tab)"), out);
    assertTrue(out.contains("danlu: attempt 2: step "), out);
    assertFalse(out.contains("attempt 0"), out);
    assertFalse(out.contains("attempt 3"), out);
  }

  /** The launcher's run on another thread, so a test can poll the UI while the stage runs. */
  static CompletableFuture<TrainingLauncher.Result> runInBackground(TrainingLauncher launcher) {
    return CompletableFuture.supplyAsync(
        () -> {
          try {
            return launcher.run();
          } catch (Exception e) {
            throw new IllegalStateException(e);
          }
        });
  }
}
