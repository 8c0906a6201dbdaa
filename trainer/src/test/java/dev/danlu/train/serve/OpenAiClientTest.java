package dev.danlu.train.serve;

import static dev.danlu.train.serve.ServeFixture.JSON;
import static dev.danlu.train.serve.ServeFixture.generate;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The official {@code openai} npm client (pinned, installed by scripts/setup.sh) against the server
 * on stories260K: chat, streamed chat, completions, streamed completions at temperature 0 give
 * {@code danlu generate}'s text; the model list, an embedding (the client's default base64
 * encoding, decoded by the client) and a refused request come back as the client expects.
 */
class OpenAiClientTest {
  @TempDir Path tmp;

  @Test
  void officialClientGetsGeneratesText() throws Exception {
    Path modules = NodeScripts.openaiModules();
    String instruction = "Tell me a story about a cat.";
    String prompt = "Once upon a time";
    int maxTokens = 50;
    String chat =
        generate(
            "--instruction", instruction, "--temperature", "0", "--max-new-tokens", "" + maxTokens);
    String cont =
        generate(
            "--prompt", prompt, "--max-new-tokens", "" + maxTokens, "--repetition-penalty", "1.1");
    String key = "test-key-123";
    try (ApiServer s = ServeFixture.start(key, 4, 16, 512, 1 << 20)) {
      String args =
          JSON.createObjectNode()
              .put("instruction", instruction)
              .put("prompt", prompt)
              .put("maxTokens", maxTokens)
              .toString();
      JsonNode out =
          JSON.readTree(
              NodeScripts.run(
                  modules, tmp, "openai-client.js", 180, ServeFixture.base(s) + "/v1", key, args));
      assertEquals(chat, out.at("/chat/text").asText());
      assertEquals("assistant", out.at("/chat/role").asText());
      assertEquals("chat.completion", out.at("/chat/object").asText());
      assertTrue(out.at("/chat/usage/completion_tokens").asInt() > 0);
      assertEquals(chat, out.at("/chatStream/text").asText());
      assertTrue(out.at("/chatStream/chunks").asInt() > 2, out.toString());
      assertEquals(out.at("/chat/finish").asText(), out.at("/chatStream/finish").asText());
      assertEquals(
          out.at("/chat/usage/total_tokens").asInt(),
          out.at("/chatStream/usage/total_tokens").asInt());
      assertEquals(cont, prompt + out.at("/completion/text").asText());
      assertEquals(cont, prompt + out.at("/completionStream/text").asText());
      assertEquals("stories260K", out.at("/models/0").asText());
      assertEquals(64, out.at("/embedding/length").asInt());
      assertEquals(1.0, out.at("/embedding/norm").asDouble(), 1e-5);
      assertEquals(400, out.at("/refused/status").asInt(), out.toString());
      assertEquals("BadRequestError", out.at("/refused/name").asText());
      assertEquals("temperature", out.at("/refused/param").asText());
    }
  }
}
