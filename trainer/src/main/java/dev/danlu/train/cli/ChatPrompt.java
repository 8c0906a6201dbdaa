package dev.danlu.train.cli;

import dev.danlu.data.sft.Alpaca2Template;
import dev.danlu.data.tokenizer.TextTokenizer;
import java.util.ArrayList;
import java.util.List;

/**
 * Multi-turn Alpaca-2 prompts exactly as Chinese-LLaMA-Alpaca-2's {@code
 * scripts/inference/gradio_demo.py} builds them ({@code predict}, lines 444-469, and {@code
 * generate_prompt}, lines 298-305; see docs/sft.md, "Chat and generation"):
 *
 * <pre>
 * one turn:   [INST] &lt;&lt;SYS&gt;&gt;\n{system}\n&lt;&lt;/SYS&gt;&gt;\n\n{q1} [/INST]
 * two turns:  [INST] &lt;&lt;SYS&gt;&gt;\n{system}\n&lt;&lt;/SYS&gt;&gt;\n\n{q1} [/INST] {a1}&lt;/s&gt;&lt;s&gt;[INST] {q2} [/INST]
 * three:      ... {a1}&lt;/s&gt;&lt;s&gt;[INST] {q2} [/INST] {a2}&lt;/s&gt;&lt;s&gt;[INST] {q3} [/INST]
 * </pre>
 *
 * The system prompt appears once, in the first turn kept; answers follow their {@code [/INST]}
 * after one space (none if the answer is empty); the literal {@code </s><s>} between turns becomes
 * the EOS and BOS ids when the reference's slow LLaMA tokenizer encodes the text, and the whole
 * prompt starts with BOS. When the prompt exceeds {@code max_memory} tokens (BOS included) the
 * oldest turn is dropped, repeatedly, while more than the current turn is left (lines 462-467).
 */
public final class ChatPrompt {
  /** The reference's {@code TEMPLATE_WITHOUT_SYSTEM_PROMPT} (gradio_demo.py line 32). */
  static final String LATER_TURN_PREFIX = "[INST] ";

  static final String LATER_TURN_SUFFIX = " [/INST]";

  /** The text the reference's tokenizer reads as BOS / EOS. */
  static final String BOS = "<s>";

  static final String EOS = "</s>";

  /** The gradio demo's {@code --max_memory} default (gradio_demo.py lines 56-60). */
  public static final int DEFAULT_MAX_MEMORY = 1024;

  /** One finished exchange: what the user asked and what the model answered. */
  public record Turn(String instruction, String response) {}

  /** A prompt ready for the model: its text, its ids, and how many old turns were dropped. */
  public record Built(String text, int[] ids, int droppedTurns) {}

  private ChatPrompt() {}

  /** The prompt text for {@code instruction} after the finished turns {@code history}. */
  public static String text(List<Turn> history, String instruction, String systemPrompt) {
    if (history.isEmpty()) {
      return Alpaca2Template.prompt(instruction, systemPrompt);
    }
    Turn first = history.get(0);
    StringBuilder sb = new StringBuilder();
    sb.append(
        answered(Alpaca2Template.prompt(first.instruction(), systemPrompt), first.response()));
    sb.append(EOS);
    for (Turn t : history.subList(1, history.size())) {
      sb.append(BOS).append(answered(laterTurn(t.instruction()), t.response())).append(EOS);
    }
    return sb.append(BOS).append(laterTurn(instruction)).toString();
  }

  /**
   * The ids of a prompt text as the reference's {@code tokenizer(prompt)} gives them (slow {@code
   * LlamaTokenizer}, {@code legacy=True}, transformers 4.35): BOS, then each stretch of text
   * between the special-token strings {@code <s>} / {@code </s>} encoded by SentencePiece on its
   * own (so each starts with the dummy-prefix space), with those strings as the BOS / EOS ids.
   */
  public static int[] ids(String text, TextTokenizer tok) {
    List<int[]> parts = new ArrayList<>();
    parts.add(new int[] {tok.bosId()});
    int from = 0;
    while (from <= text.length()) {
      int bos = text.indexOf(BOS, from);
      int eos = text.indexOf(EOS, from);
      int at;
      String special;
      if (bos < 0 && eos < 0) {
        at = text.length();
        special = null;
      } else if (eos < 0 || (bos >= 0 && bos < eos)) {
        at = bos;
        special = BOS;
      } else {
        at = eos;
        special = EOS;
      }
      if (at > from) {
        parts.add(tok.encode(text.substring(from, at)));
      }
      if (special == null) {
        break;
      }
      parts.add(new int[] {special.equals(BOS) ? tok.bosId() : tok.eosId()});
      from = at + special.length();
    }
    int n = 0;
    for (int[] p : parts) {
      n += p.length;
    }
    int[] ids = new int[n];
    int i = 0;
    for (int[] p : parts) {
      System.arraycopy(p, 0, ids, i, p.length);
      i += p.length;
    }
    return ids;
  }

  /**
   * The prompt for {@code instruction} after {@code history}, dropping the oldest turns while it is
   * longer than {@code maxMemory} tokens and any finished turn is left (the current one is never
   * dropped, so one long instruction may still exceed it).
   */
  public static Built build(
      List<Turn> history,
      String instruction,
      String systemPrompt,
      TextTokenizer tok,
      int maxMemory) {
    int dropped = 0;
    while (true) {
      List<Turn> kept = history.subList(dropped, history.size());
      String text = text(kept, instruction, systemPrompt);
      int[] ids = ids(text, tok);
      if (ids.length > maxMemory && !kept.isEmpty()) {
        dropped++;
      } else {
        return new Built(text, ids, dropped);
      }
    }
  }

  private static String laterTurn(String instruction) {
    return LATER_TURN_PREFIX + instruction + LATER_TURN_SUFFIX;
  }

  /** generate_prompt's {@code if len(response)>0: prompt += " " + response}. */
  private static String answered(String prompt, String response) {
    return response.isEmpty() ? prompt : prompt + " " + response;
  }
}
