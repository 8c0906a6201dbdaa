package dev.danlu.train.serve;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/**
 * Typed reads of an OpenAI request body: a field of the wrong type or out of range is a 400 naming
 * the field; an absent or null field takes the default. Fields the server does not know are
 * ignored, as OpenAI's own clients send some it need not act on ({@code user}).
 */
final class Params {
  private final JsonNode body;

  Params(JsonNode body) throws ApiError {
    if (body == null || !body.isObject()) {
      throw ApiError.invalid(null, "the request body must be a JSON object");
    }
    this.body = body;
  }

  JsonNode node() {
    return body;
  }

  boolean has(String name) {
    JsonNode v = body.get(name);
    return v != null && !v.isNull();
  }

  double number(String name, double def, double min, double max) throws ApiError {
    if (!has(name)) {
      return def;
    }
    JsonNode v = body.get(name);
    if (!v.isNumber()) {
      throw ApiError.invalid(name, "'" + name + "' must be a number, got " + kind(v));
    }
    double d = v.asDouble();
    if (!(d >= min && d <= max)) {
      throw ApiError.invalid(
          name, "'" + name + "' must be between " + min + " and " + max + ", got " + v);
    }
    return d;
  }

  long integer(String name, long def, long min, long max) throws ApiError {
    if (!has(name)) {
      return def;
    }
    JsonNode v = body.get(name);
    if (!v.isIntegralNumber() || !v.canConvertToLong()) {
      throw ApiError.invalid(name, "'" + name + "' must be an integer, got " + kind(v));
    }
    long l = v.asLong();
    if (l < min || l > max) {
      throw ApiError.invalid(
          name, "'" + name + "' must be between " + min + " and " + max + ", got " + l);
    }
    return l;
  }

  boolean bool(String name, boolean def) throws ApiError {
    if (!has(name)) {
      return def;
    }
    JsonNode v = body.get(name);
    if (!v.isBoolean()) {
      throw ApiError.invalid(name, "'" + name + "' must be true or false, got " + kind(v));
    }
    return v.asBoolean();
  }

  String string(String name, String def) throws ApiError {
    if (!has(name)) {
      return def;
    }
    JsonNode v = body.get(name);
    if (!v.isTextual()) {
      throw ApiError.invalid(name, "'" + name + "' must be a string, got " + kind(v));
    }
    return v.asText();
  }

  /** {@code stop}: a string or up to 4 non-empty strings. */
  List<String> stops() throws ApiError {
    List<String> out = new ArrayList<>();
    if (!has("stop")) {
      return out;
    }
    JsonNode v = body.get("stop");
    if (v.isTextual()) {
      out.add(v.asText());
    } else if (v.isArray()) {
      if (v.size() > 4) {
        throw ApiError.invalid("stop", "'stop' holds at most 4 strings, got " + v.size());
      }
      for (JsonNode s : v) {
        if (!s.isTextual()) {
          throw ApiError.invalid("stop", "'stop' must hold strings, got " + kind(s));
        }
        out.add(s.asText());
      }
    } else {
      throw ApiError.invalid("stop", "'stop' must be a string or an array of strings");
    }
    for (String s : out) {
      if (s.isEmpty()) {
        throw ApiError.invalid("stop", "'stop' strings must not be empty");
      }
    }
    return out;
  }

  /** Refuses a field this server cannot honour unless it holds its neutral value. */
  void unsupported(String name, String why) throws ApiError {
    if (!has(name)) {
      return;
    }
    JsonNode v = body.get(name);
    boolean neutral =
        (v.isBoolean() && !v.asBoolean())
            || (v.isNumber() && v.asDouble() == 0)
            || (v.isContainerNode() && v.isEmpty());
    if (!neutral) {
      throw ApiError.invalid(name, "'" + name + "' is not supported: " + why);
    }
  }

  static String kind(JsonNode v) {
    if (v.isTextual()) {
      return "a string";
    }
    if (v.isNumber()) {
      return "the number " + v;
    }
    if (v.isBoolean()) {
      return v.asText();
    }
    if (v.isArray()) {
      return "an array";
    }
    if (v.isObject()) {
      return "an object";
    }
    return v.getNodeType().toString().toLowerCase(java.util.Locale.ROOT);
  }
}
