package dev.danlu.train.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.sft.Alpaca2Template;
import dev.danlu.data.tokenizer.TextTokenizer;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** {@code danlu generate --instruction} and {@code --chat} on the real stories260K model. */
class GenerateChatTest {
  static Path model() {
    return dev.danlu.testkit.Prereq.shared("fixtures/stories260K");
  }

  static String[] run(String stdin, String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int rc =
        GenerateCli.run(
            args,
            new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)),
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    return new String[] {
      String.valueOf(rc), out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8)
    };
  }

  /** The ids of every "prompt ids: [...]" line --show-prompt printed, in order. */
  static List<int[]> promptIds(String err) {
    return err.lines()
        .filter(l -> l.startsWith("danlu generate: prompt ids: ["))
        .map(
            l ->
                Arrays.stream(l.substring(l.indexOf('[') + 1, l.length() - 1).split(", "))
                    .mapToInt(Integer::parseInt)
                    .toArray())
        .toList();
  }

  static int newTokens(String errLine) {
    String s = errLine.substring(0, errLine.indexOf(" new tokens"));
    return Integer.parseInt(s.substring(s.lastIndexOf(' ') + 1));
  }

  @Test
  void instructionGreedyAnswersInTheAlpaca2TemplateWithBos() throws Exception {
    Path m = model();
    String[] r =
        run(
            "",
            "--model",
            m.toString(),
            "--instruction",
            "Tell me about Lily",
            "--temperature",
            "0",
            "--max-new-tokens",
            "60",
            "--show-prompt");
    assertEquals("0", r[0], r[2]);
    String answer = r[1].strip();
    assertFalse(answer.isEmpty(), r[2]);
    assertFalse(answer.contains("[/INST]"), "only the answer is printed: " + answer);
    String template = Alpaca2Template.prompt("Tell me about Lily");
    assertTrue(r[2].contains("danlu generate: prompt text: " + template + "\n"), r[2]);
    try (TextTokenizer tok = TextTokenizer.load(m.resolve("tokenizer.model"))) {
      int[] want =
          IntStream.concat(IntStream.of(tok.bosId()), IntStream.of(tok.encode(template))).toArray();
      assertArrayEquals(want, promptIds(r[2]).get(0));
      // stopped at EOS or at the token limit
      String line =
          r[2].lines().filter(l -> l.contains(" new tokens in ")).findFirst().orElseThrow();
      int n = newTokens(line);
      assertTrue(n > 0 && n <= 60, line);
    }
    // greedy is deterministic whatever the seed
    String[] again =
        run(
            "",
            "--model",
            m.toString(),
            "--instruction",
            "Tell me about Lily",
            "--temperature",
            "0",
            "--max-new-tokens",
            "60",
            "--seed",
            "9");
    assertEquals(r[1], again[1]);
  }

  @Test
  void instructionStopsAtMaxNewTokens() {
    String[] r =
        run(
            "",
            "--model",
            model().toString(),
            "--instruction",
            "Once",
            "--temperature",
            "0",
            "--max-new-tokens",
            "3",
            "--system-prompt",
            "Be brief.");
    assertEquals("0", r[0], r[2]);
    String line = r[2].lines().filter(l -> l.contains(" new tokens in ")).findFirst().orElseThrow();
    assertTrue(newTokens(line) <= 3, line);
  }

  @Test
  void chatSecondPromptHoldsTheFirstTurnAsTheReferenceJoinsIt() throws Exception {
    Path m = model();
    String[] r =
        run(
            "Hi Lily\nWhere is Tom?\n",
            "--model",
            m.toString(),
            "--chat",
            "--temperature",
            "0",
            "--max-new-tokens",
            "20",
            "--show-prompt",
            "--system-prompt",
            "S");
    assertEquals("0", r[0], r[2]);
    List<String> texts =
        r[2].lines().filter(l -> l.startsWith("danlu generate: prompt text: ")).toList();
    assertEquals(2, texts.size(), r[2]);
    // stdout: marker, answer 1, marker, answer 2, marker, newline at the end of input
    String[] parts = r[1].split(GenerateCli.CHAT_MARKER, -1);
    assertEquals(4, parts.length, r[1]);
    String a1 = parts[1].strip();
    String second =
        "[INST] <<SYS>>\nS\n<</SYS>>\n\nHi Lily [/INST]"
            + (a1.isEmpty() ? "" : " " + a1)
            + "</s><s>[INST] Where is Tom? [/INST]";
    assertTrue(r[2].contains("danlu generate: prompt text: " + second + "\n"), r[2]);
    try (TextTokenizer tok = TextTokenizer.load(m.resolve("tokenizer.model"))) {
      List<int[]> ids = promptIds(r[2]);
      assertEquals(2, ids.size());
      assertArrayEquals(ChatPrompt.ids(second, tok), ids.get(1));
      int[] second1 = ids.get(1);
      assertEquals(tok.bosId(), second1[0]);
      // </s><s> between the turns are the EOS and BOS ids, not text
      int eosAt = -1;
      for (int i = 1; i < second1.length; i++) {
        if (second1[i] == tok.eosId()) {
          eosAt = i;
        }
      }
      assertTrue(eosAt > 0 && second1[eosAt + 1] == tok.bosId(), Arrays.toString(second1));
    }
  }

  @Test
  void chatClearForgetsTheHistory() {
    String[] r =
        run(
            "Hi Lily\n/clear\nWhere is Tom?\n\nnot read\n",
            "--model",
            model().toString(),
            "--chat",
            "--temperature",
            "0",
            "--max-new-tokens",
            "5",
            "--show-prompt");
    assertEquals("0", r[0], r[2]);
    assertTrue(r[2].contains("history cleared"), r[2]);
    assertTrue(
        r[2].contains(
            "danlu generate: prompt text: " + Alpaca2Template.prompt("Where is Tom?") + "\n"),
        r[2]);
    assertFalse(r[2].contains("not read"), r[2]);
    assertEquals(2, promptIds(r[2]).size(), r[2]);
  }

  @Test
  void modesAreExclusiveAndOneIsRequired() {
    String[] r = run("", "--model", "/nonexistent");
    assertEquals("2", r[0]);
    assertTrue(r[2].contains("'--prompt', '--instruction' or '--chat'"), r[2]);
    r = run("", "--model", "/nonexistent", "--prompt", "x", "--chat", "--max-new-tokens", "1");
    assertEquals("2", r[0]);
    assertTrue(r[2].contains("mutually exclusive"), r[2]);
    r = run("", "--model", "/nonexistent", "--prompt", "x");
    assertEquals("2", r[0]);
    assertTrue(r[2].contains("--max-new-tokens"), r[2]);
    r = run("", "--model", "/nonexistent", "--chat", "--repetition-penalty", "0");
    assertEquals("2", r[0]);
    assertTrue(r[2].contains("--repetition-penalty"), r[2]);
  }
}
