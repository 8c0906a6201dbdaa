package dev.danlu.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.launch.barrier.TrainingLauncher;
import dev.danlu.launch.progress.BrowserPrereq;
import dev.danlu.launch.trainer.TrainerRankWork;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Training tab as operators see it: a real tiny training (2 ranks in Spark local mode, the
 * trainer's recipe, checkpoints and evaluations) watched live in headless Chromium, then the same
 * page from the finished application's event log in a real History Server, over HTTP and in the
 * browser.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class TrainingTabTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int STEPS = 40;
  @TempDir static Path tmp;
  private static Path eventLogs;
  private static String appId;
  private static boolean trained;

  @BeforeAll
  static void logs() throws Exception {
    eventLogs = Files.createDirectories(tmp.resolve("event-logs"));
  }

  @AfterAll
  static void noDelay() {
    System.clearProperty("danlu.step.delay.ms");
  }

  /**
   * Trains; {@code whileRunning} gets the live Training tab's URL while the stage runs. With the
   * event log on, into {@link #eventLogs}.
   */
  private static void train(Watcher whileRunning) throws Exception {
    Path tokenizer = dev.danlu.testkit.Prereq.shared("fixtures/stories260K/tokenizer.model");
    TinyLlamaRun f =
        new TinyLlamaRun(
            Files.createDirectories(tmp.resolve("run")),
            tokenizer,
            "max_steps: " + STEPS + "\nsave_steps: 10\nsave_total_limit: 2");
    SparkConf conf =
        new SparkConf()
            .setMaster("local[2]")
            .setAppName("danlu-training-tab")
            .set("spark.driver.host", "127.0.0.1")
            .set("spark.driver.bindAddress", "127.0.0.1")
            .set("spark.ui.enabled", "true")
            .set("spark.ui.port", "0")
            .set("spark.eventLog.enabled", "true")
            .set("spark.eventLog.dir", eventLogs.toUri().toString());
    // slow steps down (the tasks run in this JVM) so the browser watches a run in progress
    System.setProperty("danlu.step.delay.ms", whileRunning == null ? "0" : "150");
    ByteArrayOutputStream console = new ByteArrayOutputStream();
    try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
      appId = jsc.sc().applicationId();
      TrainingLauncher.Plan plan =
          new TrainingLauncher.Plan(
              TrainerRankWork.class.getName(),
              2,
              1,
              Files.readString(f.config),
              f.config.toString(),
              List.of("eval_steps=20"),
              Duration.ZERO,
              Duration.ofSeconds(1));
      try (TrainingLauncher launcher =
          new TrainingLauncher(jsc, plan, new PrintStream(console, true, StandardCharsets.UTF_8))) {
        CompletableFuture<TrainingLauncher.Result> run = LiveProgressTest.runInBackground(launcher);
        if (whileRunning != null) {
          whileRunning.watch(jsc.sc().uiWebUrl().get() + "/training/", run);
        }
        assertEquals(1, run.get().attempts());
      }
    } finally {
      System.clearProperty("danlu.step.delay.ms");
    }
    trained = true;
  }

  interface Watcher {
    void watch(String url, CompletableFuture<TrainingLauncher.Result> run) throws Exception;
  }

  @Test
  @Order(1)
  void aBrowserSeesTheChartsLiveAndACheckpointEventAppear() throws Exception {
    Path nodeModules = BrowserPrereq.nodeModules();
    train(
        (url, run) -> {
          JsonNode seen = JSON.readTree(BrowserPrereq.run(nodeModules, tmp, url, "live", 90));
          System.out.println("browser (live): " + seen);
          JsonNode first = seen.get("first");
          assertTrue(first.get("step").asInt() >= 1, seen.toString());
          assertTrue(first.get("step").asInt() < STEPS, "seen while the run was going: " + seen);
          assertEquals(STEPS, first.get("maxSteps").asInt(), seen.toString());
          List<String> charts = JSON.convertValue(first.get("charts"), List.class);
          assertEquals(
              List.of(
                  "danlu-chart-loss", "danlu-chart-lr", "danlu-chart-gradnorm", "danlu-chart-tps"),
              charts,
              "fp32 run: no loss-scale chart");
          assertTrue(first.get("stepTicks").asInt() >= 1, seen.toString());
          assertTrue(first.get("age").asText().contains("s old"), seen.toString());
          JsonNode later = seen.get("later");
          assertTrue(later.get("checkpoints").size() >= 1, seen.toString());
          assertTrue(
              later.get("checkpoints").get(0).asText().contains("checkpoint-"), seen.toString());
          assertTrue(later.get("checkpointMarks").asInt() >= 1, seen.toString());
          assertTrue(later.get("step").asInt() >= 10, seen.toString());
          // the page refreshed itself in place: same document, same scroll position
          assertEquals("same-document", later.get("marker").asText(), seen.toString());
          assertEquals(seen.get("scrolledTo").asInt(), later.get("scrollY").asInt());
          assertTrue(seen.get("scrolledTo").asInt() > 0, seen.toString());
          assertTrue(seen.get("tip").asText().startsWith("step "), seen.toString());
          assertTrue(seen.get("tip").asText().contains("lr "), seen.toString());
          assertFalse(run.isDone() && later.get("step").asInt() < 10, seen.toString());
        });
  }

  @Test
  @Order(2)
  void theHistoryServerShowsTheFinishedRunsCurvesAndEvents() throws Exception {
    if (!trained) {
      train(null); // the browser test was skipped: train without watching
    }
    try (HistoryServerProcess hs =
        new HistoryServerProcess(eventLogs, Files.createDirectories(tmp.resolve("hs")))) {
      String page = hs.awaitApp(appId, 90);
      String html = get(page);
      assertTrue(html.contains("From the event log"), html);
      assertTrue(html.contains("Training finished."), html);
      assertTrue(html.contains("attempt 1: step " + STEPS + "/" + STEPS), html);
      for (String id :
          List.of(
              "danlu-chart-loss", "danlu-chart-lr", "danlu-chart-gradnorm", "danlu-chart-tps")) {
        assertTrue(html.contains("id=\"" + id + "\""), id);
      }
      assertTrue(html.contains("class=\"danlu-ema\""), "the smoothed loss line");
      // checkpoints every 10 steps, evaluations at 20 and 40, the attempt and the end
      assertEquals(4, count(html, "<tr class=\"danlu-event danlu-event-checkpoint\">"), html);
      assertEquals(2, count(html, "<tr class=\"danlu-event danlu-event-eval\">"), html);
      assertEquals(2, count(html, "class=\"danlu-eval\""), "eval points on the loss chart");
      assertEquals(1, count(html, "<tr class=\"danlu-event danlu-event-finished\">"), html);
      assertTrue(html.contains("checkpoint-40"), html);
      JsonNode json = JSON.readTree(get(page + "json/"));
      assertEquals(STEPS, json.get("step").asInt());
      assertEquals(STEPS, json.get("lossCurve").size(), "every step reached the event log");
      assertTrue(json.get("finished").asBoolean());
      if (java.nio.file.Files.isExecutable(Path.of("/usr/bin/chromium"))) {
        Path nodeModules = BrowserPrereq.nodeModules();
        JsonNode seen = JSON.readTree(BrowserPrereq.run(nodeModules, tmp, page, "history", 60));
        System.out.println("browser (history): " + seen);
        JsonNode later = seen.get("later");
        assertEquals(STEPS, later.get("step").asInt(), seen.toString());
        assertEquals(4, later.get("checkpoints").size(), seen.toString());
        assertEquals(2, later.get("evalDots").asInt(), seen.toString());
        assertTrue(seen.get("tip").asText().startsWith("step "), seen.toString());
      }
    }
  }

  /** GET following redirects: the History Server redirects while it loads an application. */
  private static String get(String url) throws Exception {
    java.net.http.HttpResponse<String> r =
        java.net.http.HttpClient.newBuilder()
            .followRedirects(java.net.http.HttpClient.Redirect.NORMAL)
            .build()
            .send(
                java.net.http.HttpRequest.newBuilder(java.net.URI.create(url))
                    .timeout(Duration.ofSeconds(60))
                    .build(),
                java.net.http.HttpResponse.BodyHandlers.ofString());
    assertEquals(200, r.statusCode(), url + ": " + r.body());
    return r.body();
  }

  private static int count(String s, String what) {
    int n = 0;
    for (int i = s.indexOf(what); i >= 0; i = s.indexOf(what, i + 1)) {
      n++;
    }
    return n;
  }
}
