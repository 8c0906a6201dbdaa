package dev.danlu.train.serve;

import static dev.danlu.train.serve.ServeFixture.JSON;
import static dev.danlu.train.serve.ServeFixture.post;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.danlu.data.sft.Alpaca2Template;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The chat page in a real headless Chromium (Debian's, driven by playwright-core): two turns at
 * temperature 0; each answer appears piece by piece while it streams and ends as the API's own
 * greedy answer for the same conversation (the page's default system prompt, the first answer sent
 * back as history).
 */
class ChatPageBrowserTest {
  @TempDir Path tmp;

  @Test
  void twoTurnsStreamIntoThePage() throws Exception {
    Path modules = NodeScripts.browserModules();
    String q1 = "Tell me a story about a cat.";
    String q2 = "What happened next?";
    int maxTokens = 60;
    // slow steps a little so the page sees the answer grow
    System.setProperty("danlu.serve.step.delay.ms", "15");
    ApiServer s;
    try {
      s = ServeFixture.start(null, 4, 16, 512, 1 << 20);
    } finally {
      System.clearProperty("danlu.serve.step.delay.ms");
    }
    try (s) {
      String args =
          JSON.createObjectNode()
              .put("temperature", 0)
              .put("maxTokens", maxTokens)
              .put("stopTurn", q1)
              .set("turns", JSON.createArrayNode().add(q1).add(q2))
              .toString();
      Path profile = Files.createTempDirectory(tmp, "chromium-profile");
      JsonNode out =
          JSON.readTree(
              NodeScripts.run(
                  modules,
                  tmp,
                  "chat-page.js",
                  240,
                  ServeFixture.base(s) + "/",
                  profile.toString(),
                  "120",
                  args));
      assertEquals("stories260K", out.get("model").asText());
      assertEquals(2, out.get("turns").size());
      assertEquals(q1, out.at("/userMessages/0").asText());
      assertEquals(q2, out.at("/userMessages/1").asText());
      // the API's greedy answers for the same two turns
      String a1 = answer(s, q1, null, null, maxTokens);
      String a2 = answer(s, q1, a1, q2, maxTokens);
      String[] expected = {a1, a2};
      for (int t = 0; t < 2; t++) {
        JsonNode turn = out.get("turns").get(t);
        assertEquals(expected[t], turn.get("answer").asText(), "turn " + (t + 1));
        assertTrue(
            turn.get("lengths").size() >= 3,
            "turn " + (t + 1) + " did not stream: lengths seen " + turn.get("lengths"));
        assertTrue(turn.get("status").asText().startsWith("finish: "), turn.toString());
      }
      // Stop (on a fresh conversation asking q1 again, with room for 400 tokens): the page aborts
      // the request, the server cancels the generation and frees the slot
      JsonNode stopped = out.get("stopped");
      assertEquals("stopped", stopped.get("status").asText(), out.toString());
      assertTrue(stopped.get("sendEnabled").asBoolean() && !stopped.get("stopEnabled").asBoolean());
      long until = System.nanoTime() + 20_000_000_000L;
      while (ServeFixture.metric(s, "danlu_serve_active_sequences") > 0
          && System.nanoTime() < until) {
        Thread.sleep(20);
      }
      assertEquals(0, ServeFixture.metric(s, "danlu_serve_active_sequences"));
      assertEquals(1, ServeFixture.metric(s, "danlu_serve_cancelled_sequences_total"));
    }
  }

  private static String answer(ApiServer s, String q1, String a1, String q2, int maxTokens)
      throws Exception {
    ObjectNode b = JSON.createObjectNode();
    ArrayNode m = b.putArray("messages");
    m.addObject().put("role", "system").put("content", Alpaca2Template.DEFAULT_SYSTEM_PROMPT);
    m.addObject().put("role", "user").put("content", q1);
    if (q2 != null) {
      m.addObject().put("role", "assistant").put("content", a1);
      m.addObject().put("role", "user").put("content", q2);
    }
    b.put("temperature", 0);
    b.put("max_tokens", maxTokens);
    return JSON.readTree(post(s, "/v1/chat/completions", b.toString(), null).body())
        .at("/choices/0/message/content")
        .asText();
  }
}
