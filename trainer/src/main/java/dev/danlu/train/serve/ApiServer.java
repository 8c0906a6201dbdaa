package dev.danlu.train.serve;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.train.model.Embeddings;
import dev.danlu.train.model.LlamaWeights;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * {@code danlu serve}'s HTTP side: OpenAI's REST shapes over the JDK's HTTP server, in front of one
 * continuous-batching {@link Engine}. Each request runs on its own thread, which queues its
 * sequences and then waits for (or streams) their tokens; the engine thread never touches a socket.
 *
 * <p>Refusals use OpenAI's error object: 400 for malformed JSON, wrong-typed fields and prompts
 * that do not fit the context; 401 for a wrong or missing key when one is set; 404/405 for other
 * paths and methods; 413 for bodies over the limit; 429 when the waiting queue is full; 500 when
 * the engine failed. Generation itself, streamed or not, is {@link Completions}.
 */
public final class ApiServer implements AutoCloseable {
  /** The chat page and its assets, served from the classpath. */
  private static final String STATIC = "/dev/danlu/train/serve/static/";

  private final ObjectMapper json = new ObjectMapper();
  private final Options opt;
  private final LlamaWeights w;
  private final TextTokenizer tok;
  private final Engine engine;
  private final Metrics metrics;
  private final HttpServer http;
  private final ExecutorService pool;
  private final SecureRandom seeds = new SecureRandom();
  private final long created = System.currentTimeMillis() / 1000;
  private final Completions completions;

  /** Server settings. */
  public record Options(
      String host,
      int port,
      String apiKey,
      int maxBatch,
      int maxQueue,
      int ctx,
      long maxBodyBytes,
      String modelId,
      boolean storeKvBeforeRope) {
    public Options {
      if (maxBatch < 1) {
        throw new IllegalArgumentException("--max-batch must be >= 1, got " + maxBatch);
      }
      if (maxQueue < 0) {
        throw new IllegalArgumentException("--max-queue must be >= 0, got " + maxQueue);
      }
      if (ctx < 2) {
        throw new IllegalArgumentException("--ctx must be >= 2, got " + ctx);
      }
      if (maxBodyBytes < 1024) {
        throw new IllegalArgumentException("--max-body-bytes must be >= 1024, got " + maxBodyBytes);
      }
    }
  }

  /** Starts serving (the model must outlive the server; the tokenizer is not closed here). */
  public ApiServer(LlamaWeights w, TextTokenizer tok, Options opt) throws IOException {
    this.opt = opt;
    this.w = w;
    this.tok = tok;
    this.metrics = new Metrics();
    this.engine = new Engine(w, opt.maxBatch(), opt.maxQueue(), opt.storeKvBeforeRope(), metrics);
    this.completions = new Completions(json, tok, engine, opt.modelId());
    AtomicInteger threads = new AtomicInteger();
    this.pool =
        Executors.newCachedThreadPool(
            r -> {
              Thread t = new Thread(r, "danlu-serve-http-" + threads.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
    this.http = HttpServer.create(new InetSocketAddress(opt.host(), opt.port()), 128);
    http.setExecutor(pool);
    http.createContext("/", this::handle);
    http.start();
  }

  /** The port bound (the ephemeral one with port 0). */
  public int port() {
    return http.getAddress().getPort();
  }

  public Metrics metrics() {
    return metrics;
  }

  @Override
  public void close() throws InterruptedException {
    http.stop(0);
    engine.close();
    pool.shutdownNow();
    pool.awaitTermination(10, TimeUnit.SECONDS);
  }

  // ---------------------------------------------------------------- routing

  private void handle(HttpExchange ex) {
    String path = ex.getRequestURI().getPath();
    String endpoint = endpointLabel(path);
    int status;
    try {
      status = route(ex, path);
    } catch (ApiError e) {
      status = e.status;
      sendJson(ex, e.status, e.body(json));
    } catch (Completions.ClientGone e) {
      status = 499; // nginx's "client closed request", for the metrics only
    } catch (RuntimeException | IOException e) {
      status = 500;
      System.err.println("danlu serve: " + path + ": " + e);
      ApiError err =
          new ApiError(500, "server_error", null, null, "internal error: " + e.getMessage());
      sendJson(ex, 500, err.body(json));
    } finally {
      ex.close();
    }
    metrics.request(endpoint, status);
  }

  private static String endpointLabel(String path) {
    return switch (path) {
      case "/v1/chat/completions",
              "/v1/completions",
              "/v1/embeddings",
              "/v1/models",
              "/health",
              "/metrics" ->
          path;
      default -> path.startsWith("/v1/") ? "other" : "page";
    };
  }

  private int route(HttpExchange ex, String path)
      throws ApiError, IOException, Completions.ClientGone {
    String method = ex.getRequestMethod();
    switch (path) {
      case "/health" -> {
        requireMethod(method, "GET");
        ObjectNode h = json.createObjectNode();
        boolean ok = engine.alive();
        h.put("status", ok ? "ok" : "engine stopped");
        h.put("model", opt.modelId());
        h.put("active", metrics.activeSequences());
        h.put("queued", metrics.queuedSequences());
        sendJson(ex, ok ? 200 : 503, h);
        return ok ? 200 : 503;
      }
      case "/metrics" -> {
        requireMethod(method, "GET");
        send(ex, 200, "text/plain; version=0.0.4; charset=utf-8", metrics.render());
        return 200;
      }
      case "/", "/index.html", "/chat.js", "/chat.css" -> {
        requireMethod(method, "GET");
        String name = path.equals("/") ? "index.html" : path.substring(1);
        return staticFile(ex, name);
      }
      default -> {}
    }
    if (!path.startsWith("/v1/")) {
      throw new ApiError(404, "invalid_request_error", null, "not_found", "no page at " + path);
    }
    authorize(ex);
    switch (path) {
      case "/v1/models" -> {
        requireMethod(method, "GET");
        ObjectNode r = json.createObjectNode();
        r.put("object", "list");
        ObjectNode m = r.putArray("data").addObject();
        m.put("id", opt.modelId());
        m.put("object", "model");
        m.put("created", created);
        m.put("owned_by", "danlu");
        sendJson(ex, 200, r);
        return 200;
      }
      case "/v1/chat/completions", "/v1/completions" -> {
        requireMethod(method, "POST");
        Params p = new Params(readJson(ex));
        boolean chat = path.equals("/v1/chat/completions");
        long seed = seeds.nextLong();
        Generation g =
            chat
                ? Generation.chat(p, tok, opt.ctx(), seed)
                : Generation.completion(p, tok, opt.ctx(), seed);
        completions.generate(ex, g);
        return 200;
      }
      case "/v1/embeddings" -> {
        requireMethod(method, "POST");
        embeddings(ex, new Params(readJson(ex)));
        return 200;
      }
      default ->
          throw new ApiError(
              404, "invalid_request_error", null, "not_found", "unknown endpoint " + path);
    }
  }

  private static void requireMethod(String method, String want) throws ApiError {
    if (!method.equals(want)) {
      throw new ApiError(
          405, "invalid_request_error", null, "method_not_allowed", "use " + want + " here");
    }
  }

  /** With --api-key: {@code Authorization: Bearer <key>}, compared in constant time. */
  private void authorize(HttpExchange ex) throws ApiError {
    if (opt.apiKey() == null) {
      return;
    }
    String h = ex.getRequestHeaders().getFirst("Authorization");
    String given = h != null && h.startsWith("Bearer ") ? h.substring(7).trim() : "";
    if (!MessageDigest.isEqual(
        given.getBytes(StandardCharsets.UTF_8), opt.apiKey().getBytes(StandardCharsets.UTF_8))) {
      throw new ApiError(
          401,
          "invalid_request_error",
          null,
          "invalid_api_key",
          h == null
              ? "missing API key: send 'Authorization: Bearer <key>' (the server's --api-key)"
              : "wrong API key");
    }
  }

  /** The body as JSON, refusing more than --max-body-bytes (413) and malformed JSON (400). */
  private JsonNode readJson(HttpExchange ex) throws ApiError, IOException {
    long limit = opt.maxBodyBytes();
    String len = ex.getRequestHeaders().getFirst("Content-Length");
    if (len != null) {
      long n;
      try {
        n = Long.parseLong(len.trim());
      } catch (NumberFormatException e) {
        throw ApiError.invalid(null, "bad Content-Length " + len);
      }
      if (n > limit) {
        throw tooLarge(n);
      }
    }
    byte[] body;
    try (InputStream in = ex.getRequestBody()) {
      body = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, limit + 1));
    }
    if (body.length > limit) {
      throw tooLarge(body.length);
    }
    try {
      JsonNode node = json.readTree(body);
      if (node == null || node.isMissingNode()) {
        throw ApiError.invalid(null, "empty request body: send a JSON object");
      }
      return node;
    } catch (JsonProcessingException e) {
      throw ApiError.invalid(
          null, "the body is not valid JSON: " + e.getOriginalMessage().split("\n")[0]);
    }
  }

  private ApiError tooLarge(long n) {
    return new ApiError(
        413,
        "invalid_request_error",
        null,
        "request_too_large",
        "the body has "
            + n
            + "+ bytes; this server takes at most "
            + opt.maxBodyBytes()
            + " (--max-body-bytes)");
  }

  // ---------------------------------------------------------------- embeddings

  private void embeddings(HttpExchange ex, Params p) throws ApiError, IOException {
    p.string("model", null);
    p.string("user", null);
    String format = p.string("encoding_format", "float");
    if (!format.equals("float") && !format.equals("base64")) {
      throw ApiError.invalid("encoding_format", "'encoding_format' must be float or base64");
    }
    if (p.has("dimensions")) {
      p.integer(
          "dimensions", w.config().hiddenSize(), w.config().hiddenSize(), w.config().hiddenSize());
    }
    JsonNode in = p.node().get("input");
    List<String> texts = new ArrayList<>();
    if (in != null && in.isTextual()) {
      texts.add(in.asText());
    } else if (in != null && in.isArray() && !in.isEmpty()) {
      for (JsonNode t : in) {
        if (!t.isTextual()) {
          throw ApiError.invalid("input", "'input' must be a string or an array of strings");
        }
        texts.add(t.asText());
      }
    } else {
      throw ApiError.invalid("input", "'input' must be a string or a non-empty array of strings");
    }
    if (texts.size() > 256) {
      throw ApiError.invalid("input", "at most 256 inputs per request, got " + texts.size());
    }
    List<int[]> ids = new ArrayList<>();
    int total = 0;
    for (int i = 0; i < texts.size(); i++) {
      int[] enc;
      synchronized (tok) {
        enc = tok.encode(texts.get(i));
      }
      int[] x = new int[enc.length + 1];
      x[0] = tok.bosId(); // tokenizer(input) adds BOS
      System.arraycopy(enc, 0, x, 1, enc.length);
      if (x.length > opt.ctx()) {
        throw new ApiError(
            400,
            "invalid_request_error",
            "input",
            "context_length_exceeded",
            "input " + i + " has " + x.length + " tokens, more than the context of " + opt.ctx());
      }
      ids.add(x);
      total += x.length;
    }
    List<float[]> vecs;
    try {
      vecs =
          engine
              .call(
                  () -> {
                    List<float[]> out = new ArrayList<>();
                    for (int[] x : ids) {
                      out.add(Embeddings.meanPooled(w, x));
                    }
                    return out;
                  })
              .get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    } catch (ExecutionException e) {
      throw new IOException(e.getCause());
    } catch (IllegalStateException e) {
      throw new ApiError(503, "server_error", null, null, e.getMessage());
    }
    ObjectNode r = json.createObjectNode();
    r.put("object", "list");
    ArrayNode data = r.putArray("data");
    for (int i = 0; i < vecs.size(); i++) {
      ObjectNode d = data.addObject();
      d.put("object", "embedding");
      d.put("index", i);
      float[] v = vecs.get(i);
      if (format.equals("base64")) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
          b.putFloat(f);
        }
        d.put("embedding", Base64.getEncoder().encodeToString(b.array()));
      } else {
        ArrayNode a = d.putArray("embedding");
        for (float f : v) {
          a.add(f);
        }
      }
    }
    r.put("model", opt.modelId());
    ObjectNode u = r.putObject("usage");
    u.put("prompt_tokens", total);
    u.put("total_tokens", total);
    sendJson(ex, 200, r);
  }

  // ---------------------------------------------------------------- plumbing

  private int staticFile(HttpExchange ex, String name) throws IOException, ApiError {
    try (InputStream in = ApiServer.class.getResourceAsStream(STATIC + name)) {
      if (in == null) {
        throw new ApiError(404, "invalid_request_error", null, "not_found", "no " + name);
      }
      String type =
          name.endsWith(".html")
              ? "text/html; charset=utf-8"
              : name.endsWith(".js") ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8";
      send(ex, 200, type, new String(in.readAllBytes(), StandardCharsets.UTF_8));
      return 200;
    }
  }

  private void sendJson(HttpExchange ex, int status, JsonNode body) {
    try {
      send(ex, status, "application/json", json.writeValueAsString(body));
    } catch (IOException e) {
      // the client is gone; nothing to tell it
    }
  }

  static void send(HttpExchange ex, int status, String type, String body) throws IOException {
    byte[] b = body.getBytes(StandardCharsets.UTF_8);
    ex.getResponseHeaders().set("Content-Type", type);
    ex.sendResponseHeaders(status, b.length);
    try (OutputStream out = ex.getResponseBody()) {
      out.write(b);
    }
  }
}
