package dev.danlu.train.serve;

import static dev.danlu.train.serve.ServeFixture.JSON;
import static dev.danlu.train.serve.ServeFixture.generate;
import static dev.danlu.train.serve.ServeFixture.get;
import static dev.danlu.train.serve.ServeFixture.json;
import static dev.danlu.train.serve.ServeFixture.metric;
import static dev.danlu.train.serve.ServeFixture.post;
import static dev.danlu.train.serve.ServeFixture.sseData;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.danlu.data.sft.Alpaca2Template;
import dev.danlu.train.model.Embeddings;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * {@code danlu serve}'s HTTP surface on the real stories260K model: greedy answers equal {@code
 * danlu generate}'s text (chat through the Alpaca-2 template, single and multi-turn; completions),
 * streamed or not; every refusal has its status and OpenAI error object; 16 concurrent clients get
 * their own greedy continuations while /health answers; a client that disconnects mid-stream frees
 * its slot (seen in /metrics).
 */
class ServeApiTest {
  private static final String INSTRUCTION = "Tell me a story about a cat.";
  private static final String PROMPT = "Once upon a time";

  private static ObjectNode chatBody(String instruction, int maxTokens) {
    ObjectNode b = JSON.createObjectNode();
    b.putArray("messages").addObject().put("role", "user").put("content", instruction);
    b.put("temperature", 0);
    b.put("max_tokens", maxTokens);
    return b;
  }

  private static ObjectNode completionBody(String prompt, int maxTokens) {
    ObjectNode b = JSON.createObjectNode();
    b.put("prompt", prompt);
    b.put("temperature", 0);
    b.put("max_tokens", maxTokens);
    return b;
  }

  /** The streamed text of an SSE body (chat deltas or completion texts), checking its framing. */
  private static String streamedText(String body, boolean chat) throws Exception {
    List<String> data = sseData(body);
    assertEquals("[DONE]", data.get(data.size() - 1), "the stream ends with [DONE]");
    StringBuilder sb = new StringBuilder();
    String finish = null;
    for (String d : data.subList(0, data.size() - 1)) {
      JsonNode c = JSON.readTree(d);
      assertEquals(chat ? "chat.completion.chunk" : "text_completion", c.get("object").asText());
      JsonNode ch = c.get("choices").get(0);
      if (ch == null) {
        continue;
      }
      JsonNode t = chat ? ch.path("delta").get("content") : ch.get("text");
      if (t != null && !t.isNull()) {
        sb.append(t.asText());
      }
      if (!ch.get("finish_reason").isNull()) {
        finish = ch.get("finish_reason").asText();
        assertTrue(c.get("usage").get("completion_tokens").asInt() > 0);
      }
    }
    assertTrue(finish != null, "a chunk carries finish_reason");
    return sb.toString();
  }

  @Test
  void greedyAnswersEqualGenerate() throws Exception {
    try (ApiServer s = ServeFixture.start(null, 4, 16, 512, 1 << 20)) {
      // chat, one turn: generate --instruction at temperature 0 (same repetition penalty 1.1)
      String expected =
          generate("--instruction", INSTRUCTION, "--temperature", "0", "--max-new-tokens", "60");
      HttpResponse<String> r =
          post(s, "/v1/chat/completions", chatBody(INSTRUCTION, 60).toString(), null);
      assertEquals(200, r.statusCode(), r.body());
      JsonNode j = json(r);
      assertEquals("chat.completion", j.get("object").asText());
      assertEquals("assistant", j.at("/choices/0/message/role").asText());
      assertEquals(expected, j.at("/choices/0/message/content").asText());
      String finish = j.at("/choices/0/finish_reason").asText();
      assertTrue(finish.equals("stop") || finish.equals("length"), finish);
      int completionTokens = j.at("/usage/completion_tokens").asInt();
      assertTrue(completionTokens > 0 && completionTokens <= 60);
      assertEquals(
          j.at("/usage/prompt_tokens").asInt() + completionTokens,
          j.at("/usage/total_tokens").asInt());

      ObjectNode sb = chatBody(INSTRUCTION, 60);
      sb.put("stream", true);
      r = post(s, "/v1/chat/completions", sb.toString(), null);
      assertEquals(200, r.statusCode());
      assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
      assertEquals(expected, streamedText(r.body(), true));

      // completions: generate --prompt (the server's default repetition penalty is the
      // reference's 1.1, so generate gets it too)
      String cont =
          generate("--prompt", PROMPT, "--max-new-tokens", "60", "--repetition-penalty", "1.1");
      r = post(s, "/v1/completions", completionBody(PROMPT, 60).toString(), null);
      assertEquals(200, r.statusCode(), r.body());
      j = json(r);
      assertEquals("text_completion", j.get("object").asText());
      assertEquals(cont, PROMPT + j.at("/choices/0/text").asText());
      ObjectNode cb = completionBody(PROMPT, 60);
      cb.put("stream", true);
      r = post(s, "/v1/completions", cb.toString(), null);
      assertEquals(cont, PROMPT + streamedText(r.body(), false));

      // a stop string cuts the text before it
      String text = j.at("/choices/0/text").asText();
      String stop = text.substring(text.length() / 2, text.length() / 2 + 3);
      cb = completionBody(PROMPT, 60);
      cb.put("stop", stop);
      j = json(post(s, "/v1/completions", cb.toString(), null));
      assertEquals(text.substring(0, text.indexOf(stop)), j.at("/choices/0/text").asText());
      assertEquals("stop", j.at("/choices/0/finish_reason").asText());
    }
  }

  @Test
  void multiTurnChatEqualsGenerateChat() throws Exception {
    String system = "You are a storyteller.";
    String q1 = "Tell me about a dog.";
    String q2 = "What did the dog eat?";
    // generate --chat prints "> " before reading each instruction and the answer after it
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int rc =
        dev.danlu.train.cli.GenerateCli.run(
            new String[] {
              "--model",
              ServeFixture.modelDir().toString(),
              "--chat",
              "--system-prompt",
              system,
              "--temperature",
              "0",
              "--max-new-tokens",
              "40"
            },
            new ByteArrayInputStream((q1 + "\n" + q2 + "\n\n").getBytes(StandardCharsets.UTF_8)),
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    assertEquals(0, rc, err.toString(StandardCharsets.UTF_8));
    String[] parts = out.toString(StandardCharsets.UTF_8).split("(^|\n)> ", -1);
    String a1 = parts[1];
    String a2 = parts[2];
    try (ApiServer s = ServeFixture.start(null, 4, 16, 512, 1 << 20)) {
      ObjectNode b = JSON.createObjectNode();
      ArrayNode m = b.putArray("messages");
      m.addObject().put("role", "system").put("content", system);
      m.addObject().put("role", "user").put("content", q1);
      m.addObject().put("role", "assistant").put("content", a1);
      m.addObject().put("role", "user").put("content", q2);
      b.put("temperature", 0);
      b.put("max_tokens", 40);
      HttpResponse<String> r = post(s, "/v1/chat/completions", b.toString(), null);
      assertEquals(200, r.statusCode(), r.body());
      assertEquals(a2, json(r).at("/choices/0/message/content").asText());
    }
  }

  private static void assertError(HttpResponse<String> r, int status, String param, String code)
      throws Exception {
    assertEquals(status, r.statusCode(), r.body());
    assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"));
    JsonNode e = json(r).get("error");
    assertTrue(
        e != null && e.get("message").isTextual() && !e.get("message").asText().isEmpty(),
        r.body());
    assertTrue(e.get("type").isTextual(), r.body());
    assertTrue(e.has("param") && e.has("code"), r.body());
    if (param != null) {
      assertEquals(param, e.get("param").asText(), r.body());
    }
    if (code != null) {
      assertEquals(code, e.get("code").asText(), r.body());
    }
  }

  @Test
  void everyRefusalHasItsStatusAndErrorObject() throws Exception {
    String key = "sekret-key";
    System.setProperty("danlu.serve.step.delay.ms", "20");
    ApiServer s;
    try {
      s = ServeFixture.start(key, 1, 0, 128, 4096);
    } finally {
      System.clearProperty("danlu.serve.step.delay.ms");
    }
    try (s) {
      String ok = chatBody("Hi", 4).toString();
      assertError(post(s, "/v1/chat/completions", ok, null), 401, null, "invalid_api_key");
      assertError(post(s, "/v1/chat/completions", ok, "wrong"), 401, null, "invalid_api_key");
      assertError(post(s, "/v1/models", "", null), 401, null, "invalid_api_key");
      assertEquals(200, post(s, "/v1/chat/completions", ok, key).statusCode());

      assertError(post(s, "/v1/chat/completions", "{\"messages\": [", key), 400, null, null);
      assertError(post(s, "/v1/chat/completions", "", key), 400, null, null);
      assertError(post(s, "/v1/chat/completions", "[1, 2]", key), 400, null, null);
      String[][] wrong = {
        {"temperature", "\"hot\""},
        {"temperature", "9"},
        {"top_p", "0"},
        {"top_k", "-1"},
        {"max_tokens", "1.5"},
        {"max_tokens", "0"},
        {"n", "0"},
        {"n", "\"2\""},
        {"stream", "\"yes\""},
        {"stop", "5"},
        {"stop", "[\"a\", \"b\", \"c\", \"d\", \"e\"]"},
        {"seed", "\"x\""},
        {"repetition_penalty", "0"},
        {"presence_penalty", "0.5"},
        {"logprobs", "true"},
        {"stream_options", "3"},
        {"model", "7"},
      };
      for (String[] w : wrong) {
        ObjectNode b = chatBody("Hi", 4);
        b.set(w[0], JSON.readTree(w[1]));
        HttpResponse<String> r = post(s, "/v1/chat/completions", b.toString(), key);
        assertError(r, 400, w[0].equals("stream_options") ? "stream_options" : w[0], null);
      }
      String[] badMessages = {
        "{}",
        "{\"messages\": \"hi\"}",
        "{\"messages\": []}",
        "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}",
        "{\"messages\": [{\"role\": \"user\"}]}",
        "{\"messages\": [{\"role\": \"user\", \"content\": 3}]}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": \"b\"}]}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}",
      };
      for (String b : badMessages) {
        assertError(post(s, "/v1/chat/completions", b, key), 400, null, null);
      }
      assertError(post(s, "/v1/completions", "{\"prompt\": 5}", key), 400, "prompt", null);
      assertError(post(s, "/v1/completions", "{\"prompt\": [1, 2]}", key), 400, "prompt", null);
      assertError(post(s, "/v1/embeddings", "{\"input\": 5}", key), 400, "input", null);
      assertError(
          post(s, "/v1/embeddings", "{\"input\": \"x\", \"encoding_format\": \"hex\"}", key),
          400,
          "encoding_format",
          null);
      // context 128: prompt + max_tokens over it, and a prompt that alone fills it
      assertError(
          post(s, "/v1/completions", completionBody("Once", 200).toString(), key),
          400,
          "max_tokens",
          "context_length_exceeded");
      assertError(
          post(s, "/v1/completions", completionBody("a b c d ".repeat(40), 1).toString(), key),
          400,
          "prompt",
          "context_length_exceeded");
      assertError(
          post(s, "/v1/embeddings", "{\"input\": \"" + "a b c d ".repeat(40) + "\"}", key),
          400,
          "input",
          "context_length_exceeded");
      // body over --max-body-bytes 4096
      ObjectNode big = chatBody("x".repeat(5000), 4);
      assertError(
          post(s, "/v1/chat/completions", big.toString(), key), 413, null, "request_too_large");
      // the same without Content-Length (chunked): refused while reading
      byte[] bigBytes = big.toString().getBytes(StandardCharsets.UTF_8);
      HttpResponse<String> chunked =
          ServeFixture.HTTP.send(
              HttpRequest.newBuilder(URI.create(ServeFixture.base(s) + "/v1/chat/completions"))
                  .header("Authorization", "Bearer " + key)
                  .POST(
                      HttpRequest.BodyPublishers.ofInputStream(
                          () -> new ByteArrayInputStream(bigBytes)))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      assertError(chunked, 413, null, "request_too_large");
      // wrong method, unknown path
      HttpResponse<String> r =
          ServeFixture.HTTP.send(
              HttpRequest.newBuilder(URI.create(ServeFixture.base(s) + "/v1/chat/completions"))
                  .header("Authorization", "Bearer " + key)
                  .GET()
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      assertError(r, 405, null, "method_not_allowed");
      assertError(post(s, "/v1/nothing", "{}", key), 404, null, "not_found");

      // queue full: one slot, no queue; a long stream holds the slot, the next request gets 429
      ObjectNode longOne = completionBody(PROMPT, 100);
      longOne.put("stream", true);
      longOne.put("repetition_penalty", 1.0);
      CompletableFuture<HttpResponse<String>> first =
          ServeFixture.HTTP.sendAsync(
              HttpRequest.newBuilder(URI.create(ServeFixture.base(s) + "/v1/completions"))
                  .header("Authorization", "Bearer " + key)
                  .POST(HttpRequest.BodyPublishers.ofString(longOne.toString()))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      long until = System.nanoTime() + 30_000_000_000L;
      while (metric(s, "danlu_serve_active_sequences") < 1 && System.nanoTime() < until) {
        Thread.sleep(10);
      }
      assertError(
          post(s, "/v1/completions", completionBody(PROMPT, 4).toString(), key),
          429,
          null,
          "rate_limit_exceeded");
      assertEquals(200, first.get().statusCode());
      // nothing crashed: the server still answers
      assertEquals(200, get(s, "/health").statusCode());
      assertEquals(200, post(s, "/v1/chat/completions", ok, key).statusCode());
      String metrics = get(s, "/metrics").body();
      assertTrue(metrics.contains("endpoint=\"/v1/chat/completions\",code=\"401\""), metrics);
      assertTrue(metrics.contains("code=\"429\""), metrics);
      assertTrue(metrics.contains("code=\"413\""), metrics);
    }
  }

  @Test
  void sixteenConcurrentClientsGetTheirOwnGreedyContinuation() throws Exception {
    String[] names = {
      "Lily", "Tom", "Sue", "Ben", "Max", "Mia", "Sam", "Anna",
      "Tim", "Lucy", "Jack", "Zoe", "Bob", "Amy", "Dan", "Kim"
    };
    int maxTokens = 48;
    String[] prompts = new String[names.length];
    String[] expected = new String[names.length];
    for (int i = 0; i < names.length; i++) {
      prompts[i] = "Once upon a time, " + names[i];
      expected[i] =
          generate(
              "--prompt",
              prompts[i],
              "--max-new-tokens",
              "" + maxTokens,
              "--repetition-penalty",
              "1.1");
    }
    try (ApiServer s = ServeFixture.start(null, 16, 64, 512, 1 << 20)) {
      AtomicBoolean done = new AtomicBoolean();
      AtomicLong worstHealthNanos = new AtomicLong();
      AtomicLong healthChecks = new AtomicLong();
      Thread health =
          new Thread(
              () -> {
                try {
                  while (!done.get()) {
                    long t0 = System.nanoTime();
                    int st = get(s, "/health").statusCode();
                    long dt = System.nanoTime() - t0;
                    if (st != 200) {
                      worstHealthNanos.set(Long.MAX_VALUE);
                    }
                    worstHealthNanos.accumulateAndGet(dt, Math::max);
                    healthChecks.incrementAndGet();
                    Thread.sleep(20);
                  }
                } catch (Exception e) {
                  worstHealthNanos.set(Long.MAX_VALUE);
                }
              });
      health.start();
      List<CompletableFuture<String>> answers = new ArrayList<>();
      for (String p : prompts) {
        answers.add(
            CompletableFuture.supplyAsync(
                () -> {
                  try {
                    HttpResponse<String> r =
                        post(s, "/v1/completions", completionBody(p, maxTokens).toString(), null);
                    assertEquals(200, r.statusCode(), r.body());
                    return p + json(r).at("/choices/0/text").asText();
                  } catch (Exception e) {
                    throw new RuntimeException(e);
                  }
                },
                java.util.concurrent.Executors.newSingleThreadExecutor()));
      }
      String[] got = new String[prompts.length];
      for (int i = 0; i < got.length; i++) {
        got[i] = answers.get(i).get();
      }
      done.set(true);
      health.join();
      assertArrayEquals(expected, got);
      double meanBatch =
          metric(s, "danlu_serve_decode_rows_total") / metric(s, "danlu_serve_decode_steps_total");
      assertTrue(meanBatch > 2, "the requests were not decoded together: mean batch " + meanBatch);
      assertTrue(healthChecks.get() > 0);
      assertTrue(
          worstHealthNanos.get() < 2_000_000_000L,
          "/health took " + worstHealthNanos.get() / 1e6 + " ms while generating");
      assertEquals(0, metric(s, "danlu_serve_active_sequences"));
    }
  }

  @Test
  void randomGarbageNeverCrashesTheServer() throws Exception {
    String[] fields = {
      "temperature",
      "top_p",
      "top_k",
      "repetition_penalty",
      "max_tokens",
      "n",
      "stop",
      "seed",
      "stream",
      "messages",
      "prompt",
      "input",
      "stream_options",
      "logprobs",
      "encoding_format"
    };
    String[] values = {
      "null",
      "true",
      "-1",
      "0",
      "1e308",
      "-1e308",
      "3.5",
      "\"x\"",
      "[]",
      "{}",
      "[1, \"a\"]",
      "{\"role\": \"user\"}",
      "[{\"role\": \"user\", \"content\": []}]",
      "\"\"",
      "9999999999"
    };
    String[] paths = {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"};
    java.util.SplittableRandom r = new java.util.SplittableRandom(2026);
    try (ApiServer s = ServeFixture.start(null, 2, 4, 128, 8192)) {
      for (int i = 0; i < 150; i++) {
        String body;
        if (i % 5 == 0) {
          byte[] junk = new byte[r.nextInt(1, 200)];
          for (int k = 0; k < junk.length; k++) {
            junk[k] = (byte) r.nextInt(256);
          }
          body = new String(junk, StandardCharsets.ISO_8859_1);
        } else {
          ObjectNode b = i % 2 == 0 ? chatBody("Hi", 2) : completionBody("Once", 2);
          b.put("max_tokens", 2);
          for (int k = r.nextInt(1, 4); k > 0; k--) {
            b.set(
                fields[r.nextInt(fields.length)], JSON.readTree(values[r.nextInt(values.length)]));
          }
          body = b.toString();
        }
        HttpResponse<String> resp = post(s, paths[r.nextInt(paths.length)], body, null);
        int st = resp.statusCode();
        assertTrue(st == 200 || st == 400, "status " + st + " for " + body + ": " + resp.body());
        if (st == 400) {
          assertTrue(json(resp).get("error").get("message").isTextual(), resp.body());
        }
      }
      assertEquals(200, get(s, "/health").statusCode());
      assertEquals(0, metric(s, "danlu_serve_active_sequences"));
      assertTrue(!get(s, "/metrics").body().contains("code=\"500\""));
    }
  }

  @Test
  void seededChoicesAreReproducibleWhateverRunsBesideThem() throws Exception {
    try (ApiServer s = ServeFixture.start(null, 8, 16, 512, 1 << 20)) {
      ObjectNode b = completionBody(PROMPT, 24);
      b.put("temperature", 0.9);
      b.put("top_p", 0.95);
      b.put("n", 3);
      b.put("seed", 42);
      JsonNode alone = json(post(s, "/v1/completions", b.toString(), null));
      // the same request again, this time decoded beside four other requests
      List<CompletableFuture<HttpResponse<String>>> others = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        ObjectNode o = completionBody("The dog number " + i, 24);
        others.add(
            ServeFixture.HTTP.sendAsync(
                HttpRequest.newBuilder(URI.create(ServeFixture.base(s) + "/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString(o.toString()))
                    .build(),
                HttpResponse.BodyHandlers.ofString()));
      }
      JsonNode beside = json(post(s, "/v1/completions", b.toString(), null));
      for (CompletableFuture<HttpResponse<String>> f : others) {
        assertEquals(200, f.get().statusCode());
      }
      assertEquals(3, alone.get("choices").size());
      java.util.Set<String> distinct = new java.util.HashSet<>();
      int tokens = 0;
      for (int i = 0; i < 3; i++) {
        assertEquals(i, alone.at("/choices/" + i + "/index").asInt());
        String t = alone.at("/choices/" + i + "/text").asText();
        assertEquals(t, beside.at("/choices/" + i + "/text").asText(), "choice " + i);
        distinct.add(t);
      }
      assertTrue(distinct.size() > 1, "the three choices drew the same numbers: " + distinct);
      int completion = alone.at("/usage/completion_tokens").asInt();
      assertTrue(completion > 3 && completion <= 3 * 24, alone.toString());
      // another seed, other draws
      b.put("seed", 43);
      JsonNode other = json(post(s, "/v1/completions", b.toString(), null));
      assertNotEquals(alone.at("/choices/0/text").asText(), other.at("/choices/0/text").asText());
    }
  }

  @Test
  void aClientThatDisconnectsMidStreamFreesItsSlot() throws Exception {
    System.setProperty("danlu.serve.step.delay.ms", "20");
    ApiServer s;
    try {
      s = ServeFixture.start(null, 2, 4, 512, 1 << 20);
    } finally {
      System.clearProperty("danlu.serve.step.delay.ms");
    }
    try (s) {
      ObjectNode b = completionBody(PROMPT, 400);
      b.put("stream", true);
      b.put("repetition_penalty", 1.0);
      byte[] body = b.toString().getBytes(StandardCharsets.UTF_8);
      try (Socket sock = new Socket("127.0.0.1", s.port())) {
        OutputStream o = sock.getOutputStream();
        o.write(
            ("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + "Content-Length: "
                    + body.length
                    + "\r\n\r\n")
                .getBytes(StandardCharsets.US_ASCII));
        o.write(body);
        o.flush();
        InputStream in = sock.getInputStream();
        String seen = "";
        byte[] buf = new byte[1024];
        while (!seen.contains("\"text\"")) {
          int n = in.read(buf);
          assertTrue(n > 0, "the stream ended early: " + seen);
          seen += new String(buf, 0, n, StandardCharsets.UTF_8);
        }
        assertEquals(1, metric(s, "danlu_serve_active_sequences"));
      } // closes the connection mid-stream
      long until = System.nanoTime() + 20_000_000_000L;
      while (metric(s, "danlu_serve_active_sequences") > 0 && System.nanoTime() < until) {
        Thread.sleep(20);
      }
      assertEquals(0, metric(s, "danlu_serve_active_sequences"), "the slot was not freed");
      assertEquals(1, metric(s, "danlu_serve_cancelled_sequences_total"));
      double tokens = metric(s, "danlu_serve_generated_tokens_total");
      assertTrue(tokens < 400, "generation ran to the end: " + tokens + " tokens");
      // the freed slot serves the next request
      assertEquals(
          200, post(s, "/v1/completions", completionBody(PROMPT, 8).toString(), null).statusCode());
    }
  }

  @Test
  void embeddingsAreTheReferencesNormalizedMeanOfTheLastHiddenState() throws Exception {
    try (ApiServer s = ServeFixture.start(null, 2, 4, 512, 1 << 20)) {
      HttpResponse<String> r =
          post(s, "/v1/embeddings", "{\"input\": [\"" + PROMPT + "\", \"A dog\"]}", null);
      assertEquals(200, r.statusCode(), r.body());
      JsonNode j = json(r);
      assertEquals(2, j.get("data").size());
      float[][] v = new float[2][];
      for (int i = 0; i < 2; i++) {
        JsonNode e = j.get("data").get(i).get("embedding");
        v[i] = new float[e.size()];
        double norm = 0;
        for (int k = 0; k < e.size(); k++) {
          v[i][k] = e.get(k).floatValue();
          norm += v[i][k] * (double) v[i][k];
        }
        assertEquals(64, v[i].length);
        assertEquals(1.0, Math.sqrt(norm), 1e-5);
      }
      int[] enc = ServeFixture.tokenizer().encode(PROMPT);
      int[] ids = new int[enc.length + 1];
      ids[0] = ServeFixture.tokenizer().bosId();
      System.arraycopy(enc, 0, ids, 1, enc.length);
      assertArrayEquals(Embeddings.meanPooled(ServeFixture.weights(), ids), v[0]);
      assertEquals(
          ids.length + 1 + ServeFixture.tokenizer().encode("A dog").length,
          j.at("/usage/prompt_tokens").asInt());
      // base64: the same floats, little-endian
      r =
          post(
              s,
              "/v1/embeddings",
              "{\"input\": \"" + PROMPT + "\", \"encoding_format\": \"base64\"}",
              null);
      ByteBuffer bb =
          ByteBuffer.wrap(Base64.getDecoder().decode(json(r).at("/data/0/embedding").asText()))
              .order(ByteOrder.LITTLE_ENDIAN);
      float[] fromB64 = new float[bb.remaining() / 4];
      bb.asFloatBuffer().get(fromB64);
      assertArrayEquals(v[0], fromB64);
      assertNotEquals(v[0][0], v[1][0]);
    }
  }

  @Test
  void pageModelsHealthAndMetrics() throws Exception {
    try (ApiServer s = ServeFixture.start(null, 2, 4, 512, 1 << 20)) {
      HttpResponse<String> page = get(s, "/");
      assertEquals(200, page.statusCode());
      assertTrue(page.body().contains("<title>danlu chat</title>"));
      assertTrue(get(s, "/chat.js").body().contains("/v1/chat/completions"));
      assertEquals(200, get(s, "/chat.css").statusCode());
      JsonNode models = json(get(s, "/v1/models"));
      assertEquals("stories260K", models.at("/data/0/id").asText());
      JsonNode h = json(get(s, "/health"));
      assertEquals("ok", h.get("status").asText());
      String m = get(s, "/metrics").body();
      for (String name :
          List.of(
              "danlu_serve_requests_total",
              "danlu_serve_generated_tokens_total",
              "danlu_serve_queue_depth",
              "danlu_serve_time_to_first_token_seconds_bucket{le=\"+Inf\"}",
              "danlu_serve_tokens_per_second")) {
        assertTrue(m.contains(name), name + " missing from\n" + m);
      }
      assertTrue(Alpaca2Template.DEFAULT_SYSTEM_PROMPT.length() > 0);
    }
  }
}
