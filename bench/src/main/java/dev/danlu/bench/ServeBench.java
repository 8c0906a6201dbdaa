package dev.danlu.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.serve.ApiServer;
import dev.danlu.train.tensor.Backend;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * {@code danlu serve}'s continuous batching, end to end over HTTP on 127.0.0.1: for c = 1, 4, 16
 * concurrent streaming completions, generated tokens per second against the same c requests run one
 * after another (the batch-1 reference, measured in the same run), and the time to first token
 * (p50/p95) seen by the concurrent clients.
 *
 * <pre>
 *   bench/run.sh ServeBench [--model &lt;hf dir&gt;] [--tokens 48] [--streams 1,4,16]
 * </pre>
 *
 * Without --model: a random LLaMA (dim 512, 4 layers, 8 heads, ffn 1376, vocab 32000, ~45 M
 * parameters, 180 MB in float32) with the LLaMA-2 tokenizer from the corpora cache, big enough that
 * a decode step is dominated by reading the weights, as with real models.
 */
public final class ServeBench {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient HTTP =
      HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  private ServeBench() {}

  /** One request's outcome. */
  private record Result(int tokens, double ttftSeconds) {}

  public static void main(String[] args) throws Exception {
    Path model = null;
    int tokens = 48;
    int[] streams = {1, 4, 16};
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--model" -> model = Path.of(args[++i]);
        case "--tokens" -> tokens = Integer.parseInt(args[++i]);
        case "--streams" ->
            streams = Arrays.stream(args[++i].split(",")).mapToInt(Integer::parseInt).toArray();
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    Backend.select();
    LlamaWeights w;
    Path tokFile;
    String name;
    if (model != null) {
      w = HfLlama.load(model, DataType.FLOAT);
      tokFile = model.resolve("tokenizer.model");
      name = model.getFileName().toString();
    } else {
      LlamaConfig c = new LlamaConfig(512, 1376, 4, 8, 8, 32000, 1e-5, 1e4, null, false, 2048);
      w = LlamaWeights.random(c, 7, DataType.FLOAT);
      tokFile = BenchDirs.cache().resolve("corpora/tokenizers/llama2-tokenizer.model");
      name = "random-512x4-v32000";
    }
    if (!Files.isRegularFile(tokFile)) {
      throw new IllegalStateException(tokFile + " missing: run scripts/fetch-corpora.sh");
    }
    int maxStreams = Arrays.stream(streams).max().orElse(1);
    System.out.printf(
        "ServeBench: %s, %d new tokens per request, greedy, streaming over HTTP, max batch %d%n",
        name, tokens, maxStreams);
    try (TextTokenizer tok = TextTokenizer.load(tokFile);
        ApiServer server =
            new ApiServer(
                w,
                tok,
                new ApiServer.Options(
                    "127.0.0.1",
                    0,
                    null,
                    maxStreams,
                    4 * maxStreams,
                    Math.min(2048, w.config().maxPositionEmbeddings()),
                    1 << 20,
                    name,
                    false))) {
      String url = "http://127.0.0.1:" + server.port() + "/v1/completions";
      run(url, 1, tokens, true); // warm-up: JIT, first allocations
      System.out.println(
          "streams | sequential tok/s | concurrent tok/s | speed-up | TTFT p50 | TTFT p95 |"
              + " tokens");
      for (int c : streams) {
        long t0 = System.nanoTime();
        List<Result> seq = run(url, c, tokens, false);
        double seqSecs = (System.nanoTime() - t0) / 1e9;
        t0 = System.nanoTime();
        List<Result> con = run(url, c, tokens, true);
        double conSecs = (System.nanoTime() - t0) / 1e9;
        int seqTokens = seq.stream().mapToInt(Result::tokens).sum();
        int conTokens = con.stream().mapToInt(Result::tokens).sum();
        double[] ttft = con.stream().mapToDouble(Result::ttftSeconds).sorted().toArray();
        double seqRate = seqTokens / seqSecs;
        double conRate = conTokens / conSecs;
        System.out.printf(
            "%7d | %16.1f | %16.1f | %7.2fx | %6.0f ms | %6.0f ms | %d / %d%n",
            c,
            seqRate,
            conRate,
            conRate / seqRate,
            1000 * pct(ttft, 0.50),
            1000 * pct(ttft, 0.95),
            seqTokens,
            conTokens);
      }
      String metrics =
          HTTP.send(
                  HttpRequest.newBuilder(
                          URI.create("http://127.0.0.1:" + server.port() + "/metrics"))
                      .build(),
                  HttpResponse.BodyHandlers.ofString())
              .body();
      double rows = metric(metrics, "danlu_serve_decode_rows_total");
      double steps = metric(metrics, "danlu_serve_decode_steps_total");
      System.out.printf("mean decode batch over the run: %.2f rows/step%n", rows / steps);
      System.out.printf(
          "server-side time to first token, mean over the run: %.0f ms%n",
          1000
              * metric(metrics, "danlu_serve_time_to_first_token_seconds_sum")
              / metric(metrics, "danlu_serve_time_to_first_token_seconds_count"));
    }
  }

  private static double pct(double[] sorted, double q) {
    if (sorted.length == 0) {
      return Double.NaN;
    }
    int i = (int) Math.ceil(q * sorted.length) - 1;
    return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
  }

  private static double metric(String text, String name) {
    for (String line : text.split("\n")) {
      if (line.startsWith(name + " ")) {
        return Double.parseDouble(line.substring(name.length() + 1).trim());
      }
    }
    return Double.NaN;
  }

  /** {@code c} requests, all at once or one after another. */
  private static List<Result> run(String url, int c, int tokens, boolean concurrent)
      throws Exception {
    List<Result> out = new ArrayList<>();
    if (!concurrent) {
      for (int i = 0; i < c; i++) {
        out.add(request(url, i, tokens));
      }
      return out;
    }
    ExecutorService pool = Executors.newFixedThreadPool(c);
    try {
      List<Future<Result>> fs = new ArrayList<>();
      for (int i = 0; i < c; i++) {
        int k = i;
        fs.add(pool.submit(() -> request(url, k, tokens)));
      }
      for (Future<Result> f : fs) {
        out.add(f.get());
      }
    } finally {
      pool.shutdownNow();
    }
    return out;
  }

  /** One streamed greedy completion; request i has its own prompt. */
  private static Result request(String url, int i, int tokens) throws Exception {
    String body =
        JSON.createObjectNode()
            .put("prompt", "Request " + i + ": the story of the number " + (i * 7919 % 1000))
            .put("max_tokens", tokens)
            .put("temperature", 0)
            .put("repetition_penalty", 1.0)
            .put("stream", true)
            .toString();
    long t0 = System.nanoTime();
    HttpResponse<InputStream> r =
        HTTP.send(
            HttpRequest.newBuilder(URI.create(url))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .build(),
            HttpResponse.BodyHandlers.ofInputStream());
    if (r.statusCode() != 200) {
      throw new IllegalStateException(
          "HTTP " + r.statusCode() + ": " + new String(r.body().readAllBytes()));
    }
    double ttft = Double.NaN;
    int n = 0;
    try (BufferedReader in =
        new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        if (!line.startsWith("data: ") || line.equals("data: [DONE]")) {
          continue;
        }
        JsonNode c = JSON.readTree(line.substring(6));
        JsonNode ch = c.path("choices").path(0);
        if (Double.isNaN(ttft) && !ch.path("text").asText("").isEmpty()) {
          ttft = (System.nanoTime() - t0) / 1e9;
        }
        if (c.has("usage")) {
          n = c.get("usage").get("completion_tokens").asInt();
        }
      }
    }
    return new Result(n, ttft);
  }
}
