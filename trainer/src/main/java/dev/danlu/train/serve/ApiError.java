package dev.danlu.train.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * A refused request: its HTTP status and OpenAI's error object ({@code {"error": {"message",
 * "type", "param", "code"}}}), which OpenAI clients turn into typed exceptions.
 */
final class ApiError extends Exception {
  final int status;
  final String type;
  final String param;
  final String code;

  ApiError(int status, String type, String param, String code, String message) {
    super(message);
    this.status = status;
    this.type = type;
    this.param = param;
    this.code = code;
  }

  /** 400: the request is wrong; {@code param} names the field. */
  static ApiError invalid(String param, String message) {
    return new ApiError(400, "invalid_request_error", param, null, message);
  }

  ObjectNode body(ObjectMapper json) {
    ObjectNode root = json.createObjectNode();
    ObjectNode e = root.putObject("error");
    e.put("message", getMessage());
    e.put("type", type);
    if (param == null) {
      e.putNull("param");
    } else {
      e.put("param", param);
    }
    if (code == null) {
      e.putNull("code");
    } else {
      e.put("code", code);
    }
    return root;
  }
}
