package dev.danlu.launch.progress;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.danlu.launch.JobSecret;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import org.junit.jupiter.api.Test;

/** The driver endpoint accepts only the job's ranks and only the current attempt. */
class ProgressServerTest {
  private static final HttpClient HTTP =
      HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  private static int post(String url, String token, String body) throws Exception {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create(url)).POST(HttpRequest.BodyPublishers.ofString(body));
    if (token != null) {
      b.header(ProgressServer.TOKEN_HEADER, token);
    }
    return HTTP.send(b.build(), HttpResponse.BodyHandlers.discarding()).statusCode();
  }

  private static String report(int rank, int attempt, long step, double loss) {
    return String.format(
        java.util.Locale.ROOT,
        "{\"rank\":%d,\"attempt\":%d,\"step\":%d,\"maxSteps\":10,\"loss\":%s,"
            + "\"tokensPerSec\":100.0,\"etaSeconds\":5.0,\"stepSeconds\":0.5,\"receivedAtMillis\":0}",
        rank,
        attempt,
        step,
        loss);
  }

  @Test
  void strangersAndStaleAttemptsAreTurnedAway() throws Exception {
    byte[] secret = JobSecret.generate();
    ProgressBoard board = new ProgressBoard(2);
    board.startAttempt(1);
    try (ProgressServer server = new ProgressServer("127.0.0.1", 0, secret, board)) {
      String token = ProgressServer.tokenFor(secret);
      String other = ProgressServer.tokenFor(JobSecret.generate());
      assertEquals(403, post(server.url(), null, report(0, 1, 1, 2.0)));
      assertEquals(403, post(server.url(), other, report(0, 1, 1, 2.0)));
      assertEquals(400, post(server.url(), token, "{not json"));
      assertEquals(409, post(server.url(), token, report(0, 0, 7, 2.0)), "old attempt");
      assertEquals(409, post(server.url(), token, report(5, 1, 1, 2.0)), "no such rank");
      assertEquals(3, server.rejected(), "403, 403 and 400 count as rejected");
      assertEquals(0, board.updates());

      assertEquals(204, post(server.url(), token, report(0, 1, 3, 2.0)));
      assertEquals(204, post(server.url(), token, report(1, 1, 4, 3.0)));
      ProgressBoard.Summary s = board.summary();
      assertEquals(3, s.step(), "the job is where its slowest rank is");
      assertEquals(2.5, s.loss(), 1e-12);
      assertEquals(200.0, s.tokensPerSec(), 1e-12);
      assertEquals(2, s.ranksReporting());
      // A reordered older report does not move a rank backwards.
      assertEquals(409, post(server.url(), token, report(1, 1, 2, 9.0)));
      assertEquals(4, board.ranks().get(1).step());
      assertEquals(3.0, board.ranks().get(1).loss());
    }
  }

  @Test
  void unknownLossTravelsAsNaNAndIsServedAsNull() throws Exception {
    byte[] secret = JobSecret.generate();
    ProgressBoard board = new ProgressBoard(1);
    board.startAttempt(1);
    try (ProgressServer server = new ProgressServer("127.0.0.1", 0, secret, board)) {
      String token = ProgressServer.tokenFor(secret);
      // What HttpProgressReporter sends for a NaN loss (Jackson writes it as the string "NaN").
      String body =
          new com.fasterxml.jackson.databind.ObjectMapper()
              .writeValueAsString(new RankProgress(0, 1, 1, 10, Double.NaN, 5, Double.NaN, 1, 0));
      assertEquals(204, post(server.url(), token, body));
      assertEquals(true, Double.isNaN(board.summary().loss()));
      com.fasterxml.jackson.databind.JsonNode json =
          new com.fasterxml.jackson.databind.ObjectMapper().readTree(TrainingPageHtml.json(board));
      assertEquals(true, json.get("loss").isNull(), json.toString());
      assertEquals(true, json.get("etaSeconds").isNull(), json.toString());
      assertEquals(0, json.get("lossCurve").size(), "unknown losses stay off the curve");
      assertEquals(1, json.get("step").asLong());
      assertEquals(
          true, board.summary().line().contains("loss ? 5 tok/s ETA ?"), board.summary().line());
    }
  }

  @Test
  void theCurveHasOnePointPerStepWithEveryRanksThroughput() {
    ProgressBoard board = new ProgressBoard(2);
    board.startAttempt(1);
    // the trainer's loss is all-reduced: every rank reports the same one
    board.record(new RankProgress(0, 1, 1, 5, 4.0, 10, 1, 1, 0));
    board.record(new RankProgress(1, 1, 1, 5, 4.0, 30, 1, 1, 0));
    board.record(new RankProgress(0, 1, 2, 5, 1.0, 10, 1, 1, 0));
    assertEquals(
        java.util.List.of(new ProgressBoard.LossPoint(1, 4.0), new ProgressBoard.LossPoint(2, 1.0)),
        board.lossCurve());
    assertEquals(40.0, board.curve().get(0).tokensPerSec(), 1e-9);
    assertEquals(2, board.curve().get(0).ranks());
    board.startAttempt(2);
    assertEquals(0, board.summary().ranksReporting(), "a new attempt starts with no ranks");
    assertEquals(2, board.lossCurve().size(), "the curve survives a retry");
  }

  @Test
  void failureReportsTravelAsJsonAndAreKeptPerAttempt() throws Exception {
    com.fasterxml.jackson.databind.ObjectMapper json =
        new com.fasterxml.jackson.databind.ObjectMapper();
    RankProgress sent = RankProgress.failure(1, 0, "java.io.IOException: simulated GPU fault");
    RankProgress got = json.readValue(json.writeValueAsString(sent), RankProgress.class);
    assertEquals(sent, got);
    RankProgress plain =
        json.readValue(
            "{\"rank\":0,\"attempt\":0,\"step\":3,\"maxSteps\":5,\"loss\":1.0,"
                + "\"tokensPerSec\":1,\"etaSeconds\":1,\"stepSeconds\":1,"
                + "\"receivedAtMillis\":0}",
            RankProgress.class);
    assertEquals(null, plain.failure(), "older senders without the field still parse");

    ProgressBoard board = new ProgressBoard(2);
    board.record(new RankProgress(0, 0, 3, 5, 1.0, 1, 1, 1, 0));
    assertEquals(true, board.record(got));
    assertEquals(
        java.util.List.of("rank 1 reported: java.io.IOException: simulated GPU fault"),
        board.failures());
    assertEquals(3, board.summary().step(), "a failure report is not progress");
    board.startAttempt(1);
    assertEquals(java.util.List.of(), board.failures(), "a new attempt forgets old failures");
  }

  @Test
  void rootCausesComeBeforeADeadPeersConsequences() {
    assertEquals(
        java.util.List.of(
            "rank 1 reported: java.io.IOException: simulated GPU fault at step 3",
            "rank 0 reported: java.net.SocketException: Broken pipe"),
        dev.danlu.launch.barrier.TrainingLauncher.rootCausesFirst(
            java.util.List.of(
                "rank 0 reported: java.net.SocketException: Broken pipe",
                "rank 1 reported: java.io.IOException: simulated GPU fault at step 3")));
  }
}
