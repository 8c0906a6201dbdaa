package dev.danlu.train.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.train.cli.ChatPrompt.Turn;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** The multi-turn strings of gradio_demo.py's predict(), pinned character for character. */
class ChatPromptTest {
  static final String SYS = "You are a helpful assistant. 你是一个乐于助人的助手。";

  @Test
  void oneTurnIsTheAlpaca2Template() {
    assertEquals(
        "[INST] <<SYS>>\n" + SYS + "\n<</SYS>>\n\n为什么要减少污染，保护环境？ [/INST]",
        ChatPrompt.text(List.of(), "为什么要减少污染，保护环境？", SYS));
  }

  @Test
  void twoTurns() {
    assertEquals(
        "[INST] <<SYS>>\n"
            + SYS
            + "\n<</SYS>>\n\nHi [/INST] Hello! How can I help?</s><s>[INST] Tell a story [/INST]",
        ChatPrompt.text(List.of(new Turn("Hi", "Hello! How can I help?")), "Tell a story", SYS));
  }

  @Test
  void threeTurnsWithAnotherSystemPromptAndAnEmptyAnswer() {
    assertEquals(
        "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nq1 [/INST] a1</s>"
            + "<s>[INST] q2 [/INST]</s>"
            + "<s>[INST] q3\nline 2 [/INST]",
        ChatPrompt.text(
            List.of(new Turn("q1", "a1"), new Turn("q2", "")), "q3\nline 2", "Be brief."));
  }

  static TextTokenizer tokenizer() throws Exception {
    return TextTokenizer.load(
        dev.danlu.testkit.Prereq.shared("fixtures/stories260K").resolve("tokenizer.model"));
  }

  @Test
  void specialStringsBecomeBosAndEosAndEachStretchIsEncodedOnItsOwn() throws Exception {
    try (TextTokenizer tok = tokenizer()) {
      String text = ChatPrompt.text(List.of(new Turn("Hi", "Lily ran.")), "Tom?", "S");
      int[] want =
          IntStream.concat(
                  IntStream.concat(
                      IntStream.of(tok.bosId()),
                      IntStream.of(
                          tok.encode("[INST] <<SYS>>\nS\n<</SYS>>\n\nHi [/INST] Lily ran."))),
                  IntStream.concat(
                      IntStream.of(tok.eosId(), tok.bosId()),
                      IntStream.of(tok.encode("[INST] Tom? [/INST]"))))
              .toArray();
      assertArrayEquals(want, ChatPrompt.ids(text, tok));
      int[] one = ChatPrompt.ids("abc", tok);
      assertEquals(tok.bosId(), one[0]);
      assertEquals(1 + tok.encode("abc").length, one.length);
    }
  }

  @Test
  void longHistoryDropsTheOldestTurnsAndTheSystemPromptMovesToTheFirstKept() throws Exception {
    try (TextTokenizer tok = tokenizer()) {
      List<Turn> history =
          List.of(
              new Turn("first question", "first answer"),
              new Turn("second question", "second answer"));
      String full = ChatPrompt.text(history, "third", SYS);
      int fullLen = ChatPrompt.ids(full, tok).length;
      ChatPrompt.Built all = ChatPrompt.build(history, "third", SYS, tok, fullLen);
      assertEquals(0, all.droppedTurns());
      assertEquals(full, all.text());

      ChatPrompt.Built cut = ChatPrompt.build(history, "third", SYS, tok, fullLen - 1);
      assertEquals(1, cut.droppedTurns());
      assertEquals(
          "[INST] <<SYS>>\n"
              + SYS
              + "\n<</SYS>>\n\nsecond question [/INST] second answer</s><s>[INST] third [/INST]",
          cut.text());
      assertTrue(cut.ids().length <= fullLen - 1);

      // the current turn is never dropped, however long
      ChatPrompt.Built only = ChatPrompt.build(history, "third", SYS, tok, 1);
      assertEquals(2, only.droppedTurns());
      assertEquals(ChatPrompt.text(List.of(), "third", SYS), only.text());
    }
  }
}
