package dev.danlu.launch.progress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.apache.spark.util.JsonProtocol;
import org.junit.jupiter.api.Test;

/**
 * The page without Spark: a million steps stay light and keep their spikes, overflow skips and
 * events are drawn, a retry rewinds the curve, and the updates that travel through the event log
 * rebuild the same page.
 */
class TrainingPageTest {
  private static RankProgress step(int rank, int attempt, long s, double loss, boolean skipped) {
    double gradNorm = s == 500_000 ? 1000.0 : 1.0 + (s % 7) * 0.01;
    return new RankProgress(
        rank, attempt, s, 1_000_000, loss, 100, 10, 0.1, 1, null, 1e-4, gradNorm, 65536, skipped);
  }

  @Test
  void aMillionStepsRenderInAFewHundredKilobytesAndKeepTheirSpike() {
    ProgressBoard board = new ProgressBoard(1);
    board.startAttempt(1);
    for (long s = 1; s <= 1_000_000; s++) {
      board.record(step(0, 1, s, 10.0 / Math.log(s + 2), s % 100_000 == 0));
    }
    board.event(
        new TrainingEvent(
            TrainingEvent.CHECKPOINT, 1, 250_000, 5, "out/checkpoint-250000", Double.NaN));
    board.event(new TrainingEvent(TrainingEvent.EVAL, 1, 250_000, 5, "eval_loss 2.0", 2.0));
    long t0 = System.nanoTime();
    String html = TrainingPageHtml.render(board, true);
    double ms = (System.nanoTime() - t0) / 1e6;
    int bytes = html.getBytes(StandardCharsets.UTF_8).length;
    System.out.printf("1e6 steps: page %d bytes, rendered in %.0f ms%n", bytes, ms);
    assertTrue(bytes < 400_000, "page of " + bytes + " bytes");
    // the one spike of 1000 among norms near 1 sets the gradient-norm axis
    String gradChart = section(html, "danlu-chart-gradnorm");
    assertTrue(gradChart.contains(">1e+03<") || gradChart.contains(">1.00e+03<"), gradChart);
    assertEquals(10, count(gradChart, "class=\"danlu-overflow\""), "each skip marked");
    assertTrue(html.contains("id=\"danlu-chart-scale\""), "fp16: the loss-scale chart");
    assertEquals(1, count(section(html, "danlu-chart-loss"), "class=\"danlu-eval\""));
    assertEquals(1, count(section(html, "danlu-chart-loss"), "danlu-mark-checkpoint"));
    assertEquals(10, count(html, "danlu-event-overflow\""), "overflow skips listed");
    assertTrue(html.contains("Live; data as of"), html.substring(0, 500));
  }

  @Test
  void aRetryRewindsTheCurveAndTheEventLogUpdatesRebuildTheSamePage() throws Exception {
    ProgressBoard live = new ProgressBoard(2);
    ProgressBoard replayed = null;
    live.startAttempt(1);
    for (long s = 1; s <= 7; s++) {
      live.record(step(0, 1, s, 5.0 - s * 0.1, s == 3));
      live.record(step(1, 1, s, 5.0 - s * 0.1, s == 3));
      if (s == 4) {
        replayed = replay(replayed, live.takeUpdate());
      }
    }
    live.record(RankProgress.failure(1, 1, "java.io.IOException: simulated"));
    live.event(
        new TrainingEvent(TrainingEvent.ATTEMPT_FAILED, 1, 7, 9, "rank 1: simulated", Double.NaN));
    replayed = replay(replayed, live.takeUpdate());
    live.startAttempt(2);
    live.event(new TrainingEvent(TrainingEvent.RESUME, 2, 5, 10, "resumed at step 5", Double.NaN));
    assertEquals(false, live.record(step(0, 1, 8, 1, false)), "the old attempt is not heard");
    for (long s = 6; s <= 9; s++) {
      live.record(step(0, 2, s, 3.0, false));
      live.record(step(1, 2, s, 3.0, false));
    }
    replayed = replay(replayed, live.takeUpdate());

    List<CurvePoint> curve = live.curve();
    assertEquals(9, curve.size(), "steps 6-7 of attempt 1 replaced by attempt 2's");
    assertEquals(3.0, curve.get(6).loss(), 1e-6);
    assertEquals(200.0, curve.get(6).tokensPerSec(), 1e-6, "both ranks' throughput");
    assertTrue(curve.get(2).skipped());
    assertEquals(curve, replayed.curve());
    assertEquals(live.events(), replayed.events());
    assertEquals(live.summary(), replayed.summary());
    assertEquals(2, replayed.summary().attempt());
    assertEquals(
        List.of("attempt", "overflow", "rank-failed", "attempt-failed", "attempt", "resume"),
        live.events().stream().map(TrainingEvent::kind).toList());
  }

  /** Through Spark's own event-log JSON, as the History Server reads it back. */
  private static ProgressBoard replay(ProgressBoard board, TrainingUpdate u) {
    String line = JsonProtocol.sparkEventToJsonString(new TrainingUpdateEvent(u));
    assertTrue(line.contains("\"Event\":\"" + TrainingUpdateEvent.class.getName() + "\""), line);
    TrainingUpdateEvent back = (TrainingUpdateEvent) JsonProtocol.sparkEventFromJson(line);
    ProgressBoard b = board == null ? new ProgressBoard(back.update().worldSize()) : board;
    b.apply(back.update());
    return b;
  }

  private static String section(String html, String id) {
    int i = html.indexOf("id=\"" + id + "\"");
    return html.substring(i, html.indexOf("</svg>", i));
  }

  private static int count(String s, String what) {
    int n = 0;
    for (int i = s.indexOf(what); i >= 0; i = s.indexOf(what, i + 1)) {
      n++;
    }
    return n;
  }
}
