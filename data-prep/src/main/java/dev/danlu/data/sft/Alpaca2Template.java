package dev.danlu.data.sft;

/**
 * The Alpaca-2 prompt of Chinese-LLaMA-Alpaca-2 (REFERENCE.md, "Instruction data"), exactly: the
 * instruction (with a non-empty input appended after a newline) inside the LLaMA-2 chat markers,
 * with the system prompt. Training data (prep-sft) and generation (generate --instruction/--chat)
 * both build prompts here.
 */
public final class Alpaca2Template {
  /** The reference's system prompt. */
  public static final String DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. 你是一个乐于助人的助手。";

  private Alpaca2Template() {}

  /** The instruction a record asks: {@code instruction}, plus {@code "\n" + input} if non-empty. */
  public static String instruction(String instruction, String input) {
    return input == null || input.isEmpty() ? instruction : instruction + "\n" + input;
  }

  /** {@code [INST] <<SYS>>\n{system}\n<</SYS>>\n\n{instruction} [/INST]}. */
  public static String prompt(String instruction, String systemPrompt) {
    return "[INST] <<SYS>>\n" + systemPrompt + "\n<</SYS>>\n\n" + instruction + " [/INST]";
  }

  /** {@link #prompt} with the reference's system prompt. */
  public static String prompt(String instruction) {
    return prompt(instruction, DEFAULT_SYSTEM_PROMPT);
  }
}
