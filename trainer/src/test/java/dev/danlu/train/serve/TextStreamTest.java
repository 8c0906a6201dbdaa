package dev.danlu.train.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.tokenizer.TextTokenizer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Streamed text on the real stories260K tokenizer (512 pieces, so Chinese characters are byte
 * pieces): the pieces sent concatenate to the tokenizer's decoding of all ids, a split character is
 * never sent half, a stop string is never sent even in part, and chat text is stripped as the
 * reference strips the whole answer.
 */
class TextStreamTest {
  private static List<String> pushAll(TextStream s, int[] ids) {
    List<String> out = new ArrayList<>();
    for (int id : ids) {
      out.add(s.push(id));
      if (s.stopped()) {
        break;
      }
    }
    out.add(s.finish());
    return out;
  }

  @Test
  void piecesConcatenateToTheDecodedText() throws Exception {
    TextTokenizer tok = ServeFixture.tokenizer();
    int[] prompt = tok.encode("Once upon a");
    int[] gen = tok.encode(" time, 小猫 sat. Then it ran");
    int[] all = new int[prompt.length + gen.length];
    System.arraycopy(prompt, 0, all, 0, prompt.length);
    System.arraycopy(gen, 0, all, prompt.length, gen.length);
    TextStream s = new TextStream(tok, prompt, List.of(), false, tok.bosId(), tok.eosId());
    List<String> pieces = pushAll(s, gen);
    String joined = String.join("", pieces);
    assertEquals(tok.decode(all), tok.decode(prompt) + joined);
    for (String p : pieces) {
      assertFalse(p.contains("\uFFFD"), "half a character was sent: " + pieces);
    }
    assertTrue(pieces.stream().filter(p -> !p.isEmpty()).count() > 5, pieces.toString());
  }

  @Test
  void aStopStringEndsTheTextAndIsNeverSent() throws Exception {
    TextTokenizer tok = ServeFixture.tokenizer();
    int[] gen = tok.encode("The dog ran home. The end. More text");
    TextStream s =
        new TextStream(tok, tok.encode("Story:"), List.of("The end", "zzz"), false, tok.bosId());
    List<String> pieces = pushAll(s, gen);
    assertTrue(s.stopped());
    String joined = String.join("", pieces);
    assertEquals(" The dog ran home. ", joined);
    for (String p : pieces) {
      assertFalse(p.contains("The e"), "part of the stop string was sent: " + pieces);
    }
  }

  @Test
  void chatTextIsStrippedLikeTheWholeAnswer() throws Exception {
    TextTokenizer tok = ServeFixture.tokenizer();
    int[] gen = tok.encode("  Hello there.  \n");
    TextStream s = new TextStream(tok, new int[0], List.of(), true, tok.bosId(), tok.eosId());
    String joined = String.join("", pushAll(s, gen));
    assertEquals(tok.decode(gen).strip(), joined);
  }
}
