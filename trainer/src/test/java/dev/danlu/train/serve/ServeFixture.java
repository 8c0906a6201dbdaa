package dev.danlu.train.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.testkit.Prereq;
import dev.danlu.train.cli.GenerateCli;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.LlamaWeights;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The real stories260K model (../shared fixture) behind an {@link ApiServer} on 127.0.0.1 with an
 * ephemeral port, an HTTP client for it, and {@code danlu generate}'s output for comparison.
 */
final class ServeFixture {
  static final ObjectMapper JSON = new ObjectMapper();
  private static LlamaWeights weights;
  private static TextTokenizer tok;

  private ServeFixture() {}

  static Path modelDir() {
    return Prereq.shared("fixtures/stories260K");
  }

  static synchronized LlamaWeights weights() throws Exception {
    if (weights == null) {
      weights = HfLlama.load(modelDir(), DataType.FLOAT);
      tok = TextTokenizer.load(modelDir().resolve("tokenizer.model"));
    }
    return weights;
  }

  static synchronized TextTokenizer tokenizer() throws Exception {
    weights();
    return tok;
  }

  static ApiServer start(String apiKey, int maxBatch, int maxQueue, int ctx, long maxBody)
      throws Exception {
    return new ApiServer(
        weights(),
        tokenizer(),
        new ApiServer.Options(
            "127.0.0.1", 0, apiKey, maxBatch, maxQueue, ctx, maxBody, "stories260K", false));
  }

  static String base(ApiServer s) {
    return "http://127.0.0.1:" + s.port();
  }

  static final HttpClient HTTP =
      HttpClient.newBuilder()
          .version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(10))
          .build();

  static HttpResponse<String> post(ApiServer s, String path, String body, String key)
      throws Exception {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create(base(s) + path))
            .timeout(Duration.ofSeconds(120))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8));
    if (key != null) {
      b.header("Authorization", "Bearer " + key);
    }
    return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
  }

  static HttpResponse<String> get(ApiServer s, String path) throws Exception {
    return HTTP.send(
        HttpRequest.newBuilder(URI.create(base(s) + path)).timeout(Duration.ofSeconds(30)).build(),
        HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
  }

  static JsonNode json(HttpResponse<String> r) throws Exception {
    return JSON.readTree(r.body());
  }

  /** The value of an unlabelled metric in /metrics. */
  static double metric(ApiServer s, String name) throws Exception {
    for (String line : get(s, "/metrics").body().split("\n")) {
      if (line.startsWith(name + " ")) {
        return Double.parseDouble(line.substring(name.length() + 1).trim());
      }
    }
    throw new AssertionError("no metric " + name);
  }

  /** The data lines of an SSE body, without the {@code data: } prefix. */
  static List<String> sseData(String body) {
    List<String> out = new ArrayList<>();
    for (String line : body.split("\n")) {
      if (line.startsWith("data: ")) {
        out.add(line.substring(6));
      }
    }
    return out;
  }

  /** {@code danlu generate}'s stdout (without the final newline) for {@code args}. */
  static String generate(String... args) throws Exception {
    List<String> all = new ArrayList<>(List.of("--model", modelDir().toString()));
    all.addAll(List.of(args));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int rc =
        GenerateCli.run(
            all.toArray(new String[0]),
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    if (rc != 0) {
      throw new AssertionError("generate failed: " + err.toString(StandardCharsets.UTF_8));
    }
    String s = out.toString(StandardCharsets.UTF_8);
    return s.endsWith("\n") ? s.substring(0, s.length() - 1) : s;
  }
}
