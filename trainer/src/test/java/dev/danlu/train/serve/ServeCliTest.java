package dev.danlu.train.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.cli.CliSupport;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code danlu serve} as a command: usage errors, and a real start on 127.0.0.1 with a key. */
class ServeCliTest {
  @TempDir Path tmp;

  private static int run(ByteArrayOutputStream err, String... args) {
    PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8);
    return CliSupport.execute(
        new ServeCli(e), args, new PrintStream(new ByteArrayOutputStream()), e);
  }

  @Test
  void badOptionsAreUsageErrors() throws Exception {
    String model = ServeFixture.modelDir().toString();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    assertEquals(2, run(err, "--model", model, "--port", "70000"));
    assertTrue(err.toString(StandardCharsets.UTF_8).contains("--port"), err.toString());
    err.reset();
    assertEquals(2, run(err, "--model", model, "--ntk-alpha", "fast"));
    err.reset();
    assertEquals(2, run(err, "--model", model, "--max-batch", "0"));
    err.reset();
    assertEquals(1, run(err, "--model", tmp.toString()));
    assertTrue(err.toString(StandardCharsets.UTF_8).contains("tokenizer.model"), err.toString());
  }

  @Test
  void startsOnLoopbackWithAnEphemeralPortAndStops() throws Exception {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8);
    ServeCli cli = new ServeCli(e);
    CompletableFuture<Integer> rc =
        CompletableFuture.supplyAsync(
            () ->
                CliSupport.execute(
                    cli,
                    new String[] {
                      "--model",
                      ServeFixture.modelDir().toString(),
                      "--port",
                      "0",
                      "--api-key",
                      "k1",
                      "--max-batch",
                      "2"
                    },
                    new PrintStream(new ByteArrayOutputStream()),
                    e));
    try {
      Pattern p = Pattern.compile("listening on http://127\\.0\\.0\\.1:(\\d+)/");
      Matcher m = null;
      long until = System.nanoTime() + 60_000_000_000L;
      while (System.nanoTime() < until && !rc.isDone()) {
        m = p.matcher(err.toString(StandardCharsets.UTF_8));
        if (m.find()) {
          break;
        }
        m = null;
        Thread.sleep(50);
      }
      assertTrue(m != null, "no 'listening on' line:\n" + err);
      String base = "http://127.0.0.1:" + m.group(1);
      HttpResponse<String> h =
          ServeFixture.HTTP.send(
              HttpRequest.newBuilder(URI.create(base + "/health")).build(),
              HttpResponse.BodyHandlers.ofString());
      assertEquals(200, h.statusCode());
      HttpResponse<String> models =
          ServeFixture.HTTP.send(
              HttpRequest.newBuilder(URI.create(base + "/v1/models")).build(),
              HttpResponse.BodyHandlers.ofString());
      assertEquals(401, models.statusCode());
      models =
          ServeFixture.HTTP.send(
              HttpRequest.newBuilder(URI.create(base + "/v1/models"))
                  .header("Authorization", "Bearer k1")
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      assertEquals(200, models.statusCode());
      assertTrue(models.body().contains("\"stories260K\""), models.body());
    } finally {
      cli.stop();
    }
    assertEquals(0, rc.get(60, TimeUnit.SECONDS));
  }
}
