package dev.danlu.train.serve;

import com.fasterxml.jackson.databind.JsonNode;
import dev.danlu.data.sft.Alpaca2Template;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.train.cli.ChatPrompt;
import dev.danlu.train.model.Sampler;
import java.util.ArrayList;
import java.util.List;

/**
 * One parsed generation request ({@code /v1/chat/completions} or {@code /v1/completions}): the
 * prompt ids, the sampling settings per choice and how text is cut. Defaults are the reference
 * server's ({@code openai_api_protocol.py}: temperature 0.2, top_p 0.9, top_k 40,
 * repetition_penalty 1.1, max_tokens 512), the same as {@code danlu generate --instruction}'s.
 */
final class Generation {
  static final double DEFAULT_TEMPERATURE = 0.2;
  static final double DEFAULT_TOP_P = 0.9;
  static final int DEFAULT_TOP_K = 40;
  static final double DEFAULT_REPETITION_PENALTY = 1.1;
  static final int DEFAULT_MAX_TOKENS = 512;
  static final int MAX_N = 16;

  final boolean chat;
  final String promptText;
  final int[] promptIds;
  final int maxTokens;
  final int n;
  final double temperature;
  final double topP;
  final int topK;
  final double repetitionPenalty;
  final long seed;
  final List<String> stops;
  final boolean stream;
  final boolean includeUsage;

  private Generation(Params p, boolean chat, String promptText, int[] promptIds, int ctx, long seed)
      throws ApiError {
    this.chat = chat;
    this.promptText = promptText;
    this.promptIds = promptIds;
    this.temperature = p.number("temperature", DEFAULT_TEMPERATURE, 0, 2);
    this.topP = p.number("top_p", DEFAULT_TOP_P, 0, 1);
    if (topP == 0) {
      throw ApiError.invalid("top_p", "'top_p' must be greater than 0");
    }
    this.topK = (int) p.integer("top_k", DEFAULT_TOP_K, 0, Integer.MAX_VALUE);
    this.repetitionPenalty =
        p.number("repetition_penalty", DEFAULT_REPETITION_PENALTY, Double.MIN_VALUE, 100);
    this.n = (int) p.integer("n", 1, 1, MAX_N);
    this.stops = p.stops();
    this.stream = p.bool("stream", false);
    this.seed = p.has("seed") ? p.integer("seed", 0, Long.MIN_VALUE, Long.MAX_VALUE) : seed;
    JsonNode so = p.node().get("stream_options");
    boolean usage = false;
    if (so != null && !so.isNull()) {
      if (!so.isObject()) {
        throw ApiError.invalid("stream_options", "'stream_options' must be an object");
      }
      usage = new Params(so).bool("include_usage", false);
    }
    this.includeUsage = usage;
    p.string("model", null);
    p.string("user", null);
    p.unsupported("presence_penalty", "use repetition_penalty");
    p.unsupported("frequency_penalty", "use repetition_penalty");
    p.unsupported("logit_bias", "no logit bias");
    p.unsupported("logprobs", "no log-probabilities");
    p.unsupported("top_logprobs", "no log-probabilities");
    p.unsupported("tools", "no tool calls");
    p.unsupported("functions", "no function calls");
    p.unsupported("echo", "the prompt is not echoed");
    p.unsupported("suffix", "no insertion");
    if (p.has("best_of") && p.integer("best_of", 1, 1, 1) != 1) {
      throw ApiError.invalid("best_of", "'best_of' other than 1 is not supported");
    }
    String field = p.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    int room = ctx - promptIds.length;
    if (room < 1) {
      throw new ApiError(
          400,
          "invalid_request_error",
          chat ? "messages" : "prompt",
          "context_length_exceeded",
          "the prompt has "
              + promptIds.length
              + " tokens, which leaves no room in the context of "
              + ctx
              + " tokens (--ctx)");
    }
    if (p.has(field)) {
      long m = p.integer(field, 0, 1, Integer.MAX_VALUE);
      if (promptIds.length + m > ctx) {
        throw new ApiError(
            400,
            "invalid_request_error",
            field,
            "context_length_exceeded",
            "this model's context is "
                + ctx
                + " tokens, but "
                + (promptIds.length + m)
                + " were requested ("
                + promptIds.length
                + " in the prompt, "
                + m
                + " for the completion); lower '"
                + field
                + "' or shorten the prompt");
      }
      this.maxTokens = (int) m;
    } else {
      this.maxTokens = Math.min(DEFAULT_MAX_TOKENS, room);
    }
  }

  /** A chat request: messages through the Alpaca-2 template ({@link ChatPrompt}). */
  static Generation chat(Params p, TextTokenizer tok, int ctx, long seed) throws ApiError {
    JsonNode msgs = p.node().get("messages");
    if (msgs == null || !msgs.isArray() || msgs.isEmpty()) {
      throw ApiError.invalid("messages", "'messages' must be a non-empty array of messages");
    }
    String system = Alpaca2Template.DEFAULT_SYSTEM_PROMPT;
    List<ChatPrompt.Turn> turns = new ArrayList<>();
    String pendingUser = null;
    for (int i = 0; i < msgs.size(); i++) {
      JsonNode m = msgs.get(i);
      String where = "messages[" + i + "]";
      if (!m.isObject()) {
        throw ApiError.invalid(where, where + " must be an object with 'role' and 'content'");
      }
      JsonNode role = m.get("role");
      if (role == null || !role.isTextual()) {
        throw ApiError.invalid(where + ".role", where + ".role must be a string");
      }
      String content = content(m.get("content"), where + ".content");
      switch (role.asText()) {
        case "system", "developer" -> system = content; // the last one wins, as the reference
        case "user" -> {
          if (pendingUser != null) {
            throw ApiError.invalid(
                where,
                where
                    + ": two user messages in a row; the Alpaca-2 template alternates user and"
                    + " assistant turns");
          }
          pendingUser = content;
        }
        case "assistant" -> {
          if (pendingUser == null) {
            throw ApiError.invalid(
                where, where + ": an assistant message must answer a user message");
          }
          turns.add(new ChatPrompt.Turn(pendingUser, content));
          pendingUser = null;
        }
        default ->
            throw ApiError.invalid(
                where + ".role",
                where + ".role must be system, user or assistant, got '" + role.asText() + "'");
      }
    }
    if (pendingUser == null) {
      throw ApiError.invalid("messages", "the last message (besides system) must be the user's");
    }
    String text = ChatPrompt.text(turns, pendingUser, system);
    int[] ids;
    synchronized (tok) {
      ids = ChatPrompt.ids(text, tok);
    }
    return new Generation(p, true, text, ids, ctx, seed);
  }

  /** A completion request: BOS + the prompt text, continued as {@code danlu generate --prompt}. */
  static Generation completion(Params p, TextTokenizer tok, int ctx, long seed) throws ApiError {
    JsonNode v = p.node().get("prompt");
    String text;
    if (v != null && v.isTextual()) {
      text = v.asText();
    } else if (v != null && v.isArray() && v.size() == 1 && v.get(0).isTextual()) {
      text = v.get(0).asText();
    } else {
      throw ApiError.invalid(
          "prompt", "'prompt' must be a string (or an array of exactly one string)");
    }
    int[] enc;
    synchronized (tok) {
      enc = tok.encode(text);
    }
    int[] ids = new int[enc.length + 1];
    ids[0] = tok.bosId();
    System.arraycopy(enc, 0, ids, 1, enc.length);
    return new Generation(p, false, text, ids, ctx, seed);
  }

  /** Chat answers end at EOS (as generate --instruction); completions also at BOS (--prompt). */
  int[] stopIds(TextTokenizer tok) {
    return chat ? new int[] {tok.eosId()} : new int[] {tok.eosId(), tok.bosId()};
  }

  /**
   * The sampler of choice {@code i}: its seed mixes the request's seed with the choice index, so
   * choice i draws the same numbers whatever else runs beside it.
   */
  Sampler sampler(int i) {
    long s = seed + 0x9E3779B97F4A7C15L * i;
    return new Sampler(temperature, topP, topK, repetitionPenalty, s);
  }

  TextStream textStream(TextTokenizer tok) {
    int[] tail = chat ? new int[0] : java.util.Arrays.copyOfRange(promptIds, 1, promptIds.length);
    return new TextStream(tok, tail, stops, chat, tok.bosId(), tok.eosId(), tok.padId());
  }

  private static String content(JsonNode c, String where) throws ApiError {
    if (c == null || c.isNull()) {
      throw ApiError.invalid(where, where + " is missing");
    }
    if (c.isTextual()) {
      return c.asText();
    }
    if (c.isArray()) {
      // OpenAI's content parts: only text parts
      StringBuilder sb = new StringBuilder();
      for (JsonNode part : c) {
        JsonNode type = part.get("type");
        JsonNode t = part.get("text");
        if (type == null || !"text".equals(type.asText()) || t == null || !t.isTextual()) {
          throw ApiError.invalid(where, where + ": only text content parts are supported");
        }
        sb.append(t.asText());
      }
      return sb.toString();
    }
    throw ApiError.invalid(where, where + " must be a string, got " + Params.kind(c));
  }
}
