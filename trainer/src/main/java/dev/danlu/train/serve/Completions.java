package dev.danlu.train.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import dev.danlu.data.tokenizer.TextTokenizer;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * {@code /v1/chat/completions} and {@code /v1/completions} after parsing ({@link Generation}):
 * queues a request's sequences on the {@link Engine}, then answers with one JSON object or streams
 * server-sent events ({@code data: {chunk}} lines, {@code data: [DONE]} last). The engine thread
 * only appends to a request's event queue; the request's own HTTP thread does all the writing, so a
 * slow or vanished client never stalls a decode step. A streaming client that is gone is noticed at
 * the next write (a {@code : keep-alive} comment goes out every {@link #KEEPALIVE_MS} while nothing
 * else does) and its sequences are cancelled.
 */
final class Completions {
  static final long KEEPALIVE_MS = 1000;

  private final ObjectMapper json;
  private final TextTokenizer tok;
  private final Engine engine;
  private final String modelId;

  Completions(ObjectMapper json, TextTokenizer tok, Engine engine, String modelId) {
    this.json = json;
    this.tok = tok;
    this.engine = engine;
    this.modelId = modelId;
  }

  /** What a request's sequences report to its HTTP thread. */
  record Event(int choice, String text, Sequence.Finish finish, int tokens) {}

  /** Thrown when a streaming client is gone. */
  static final class ClientGone extends Exception {
    ClientGone(Throwable cause) {
      super(cause);
    }
  }

  void generate(HttpExchange ex, Generation g) throws ApiError, IOException, ClientGone {
    LinkedBlockingQueue<Event> events = new LinkedBlockingQueue<>();
    List<Sequence> seqs = new ArrayList<>();
    for (int i = 0; i < g.n; i++) {
      int choice = i;
      TextStream text = g.textStream(tok);
      Sequence.Listener l =
          new Sequence.Listener() {
            @Override
            public boolean onToken(int token) {
              String t = text.push(token);
              if (!t.isEmpty()) {
                events.add(new Event(choice, t, null, 0));
              }
              return !text.stopped();
            }

            @Override
            public void onFinish(Sequence.Finish reason, int completionTokens) {
              String t = reason == Sequence.Finish.CANCELLED ? "" : text.finish();
              events.add(new Event(choice, t, reason, completionTokens));
            }
          };
      seqs.add(new Sequence(g.promptIds, g.maxTokens, g.sampler(i), g.stopIds(tok), l));
    }
    try {
      engine.submit(seqs);
    } catch (Engine.QueueFullException e) {
      throw new ApiError(429, "rate_limit_exceeded", null, "rate_limit_exceeded", e.getMessage());
    } catch (IllegalStateException e) {
      throw new ApiError(503, "server_error", null, null, e.getMessage());
    }
    String id = (g.chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
    long createdAt = System.currentTimeMillis() / 1000;
    try {
      if (g.stream) {
        stream(ex, g, id, createdAt, events, seqs);
      } else {
        complete(ex, g, id, createdAt, events);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    } finally {
      seqs.forEach(Sequence::cancel); // no-op for finished ones
    }
  }

  private void complete(
      HttpExchange ex, Generation g, String id, long createdAt, LinkedBlockingQueue<Event> events)
      throws InterruptedException, ApiError {
    StringBuilder[] texts = new StringBuilder[g.n];
    String[] reasons = new String[g.n];
    int completion = 0;
    for (int i = 0; i < g.n; i++) {
      texts[i] = new StringBuilder();
    }
    int open = g.n;
    while (open > 0) {
      Event e = events.take();
      texts[e.choice()].append(e.text());
      if (e.finish() != null) {
        if (e.finish() == Sequence.Finish.CANCELLED) {
          throw new ApiError(503, "server_error", null, null, "generation cancelled");
        }
        reasons[e.choice()] = e.finish().openai;
        completion += e.tokens();
        open--;
      }
    }
    ObjectNode r = head(g, id, createdAt, false);
    ArrayNode choices = r.putArray("choices");
    for (int i = 0; i < g.n; i++) {
      ObjectNode c = choices.addObject();
      c.put("index", i);
      if (g.chat) {
        ObjectNode m = c.putObject("message");
        m.put("role", "assistant");
        m.put("content", texts[i].toString());
      } else {
        c.put("text", texts[i].toString());
        c.putNull("logprobs");
      }
      c.put("finish_reason", reasons[i]);
    }
    r.set("usage", usage(g.promptIds.length, completion));
    sendJson(ex, 200, r);
  }

  private void stream(
      HttpExchange ex,
      Generation g,
      String id,
      long createdAt,
      LinkedBlockingQueue<Event> events,
      List<Sequence> seqs)
      throws InterruptedException, ClientGone {
    ex.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
    ex.getResponseHeaders().set("Cache-Control", "no-cache");
    OutputStream out;
    try {
      ex.sendResponseHeaders(200, 0);
      out = ex.getResponseBody();
      if (g.chat) {
        for (int i = 0; i < g.n; i++) {
          ObjectNode c = chunk(g, id, createdAt, i);
          ObjectNode ch = (ObjectNode) c.get("choices").get(0);
          ch.putObject("delta").put("role", "assistant").put("content", "");
          ch.putNull("finish_reason");
          write(out, c);
        }
      }
    } catch (IOException e) {
      seqs.forEach(Sequence::cancel);
      throw new ClientGone(e);
    }
    int open = g.n;
    int completion = 0;
    try {
      while (open > 0) {
        Event e = events.poll(KEEPALIVE_MS, TimeUnit.MILLISECONDS);
        if (e == null) {
          // a comment line: clients ignore it, and a closed connection fails the write
          out.write(": keep-alive\n\n".getBytes(StandardCharsets.UTF_8));
          out.flush();
          continue;
        }
        if (e.finish() == Sequence.Finish.CANCELLED) {
          open--;
          continue;
        }
        if (!e.text().isEmpty()) {
          ObjectNode c = chunk(g, id, createdAt, e.choice());
          ObjectNode ch = (ObjectNode) c.get("choices").get(0);
          if (g.chat) {
            ch.putObject("delta").put("content", e.text());
          } else {
            ch.put("text", e.text());
            ch.putNull("logprobs");
          }
          ch.putNull("finish_reason");
          write(out, c);
        }
        if (e.finish() != null) {
          open--;
          completion += e.tokens();
          ObjectNode c = chunk(g, id, createdAt, e.choice());
          ObjectNode ch = (ObjectNode) c.get("choices").get(0);
          if (g.chat) {
            ch.putObject("delta");
          } else {
            ch.put("text", "");
            ch.putNull("logprobs");
          }
          ch.put("finish_reason", e.finish().openai);
          // every choice's last chunk carries its usage (a field OpenAI clients pass through)
          c.set("usage", usage(g.promptIds.length, e.tokens()));
          write(out, c);
        }
      }
      if (g.includeUsage) {
        ObjectNode c = head(g, id, createdAt, true);
        c.putArray("choices");
        c.set("usage", usage(g.promptIds.length, completion));
        write(out, c);
      }
      out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
      out.flush();
    } catch (IOException e) {
      seqs.forEach(Sequence::cancel);
      throw new ClientGone(e);
    }
  }

  private ObjectNode head(Generation g, String id, long createdAt, boolean chunk) {
    ObjectNode r = json.createObjectNode();
    r.put("id", id);
    r.put(
        "object",
        g.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
    r.put("created", createdAt);
    r.put("model", modelId);
    return r;
  }

  private ObjectNode chunk(Generation g, String id, long createdAt, int choice) {
    ObjectNode c = head(g, id, createdAt, true);
    c.putArray("choices").addObject().put("index", choice);
    return c;
  }

  private ObjectNode usage(int prompt, int completion) {
    ObjectNode u = json.createObjectNode();
    u.put("prompt_tokens", prompt);
    u.put("completion_tokens", completion);
    u.put("total_tokens", prompt + completion);
    return u;
  }

  private void write(OutputStream out, ObjectNode chunk) throws IOException {
    out.write(
        ("data: " + json.writeValueAsString(chunk) + "\n\n").getBytes(StandardCharsets.UTF_8));
    out.flush();
  }

  private void sendJson(HttpExchange ex, int status, ObjectNode body) {
    try {
      ApiServer.send(ex, status, "application/json", json.writeValueAsString(body));
    } catch (IOException e) {
      // the client is gone; nothing to tell it
    }
  }
}
