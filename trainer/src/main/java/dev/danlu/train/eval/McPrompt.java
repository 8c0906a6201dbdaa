package dev.danlu.train.eval;

import dev.danlu.data.sft.Alpaca2Template;
import java.util.List;

/**
 * The prompt texts of Chinese-LLaMA-Alpaca-2's C-Eval / CMMLU evaluators in constrained-decoding
 * mode without chain of thought ({@code llama_evaluator.py} / {@code llama2_evaluator.py}: {@code
 * format_example}, {@code generate_llama2_few_shot_prompt} / {@code generate_few_shot_noprompt},
 * {@code generate_alpaca2_few_shot_prompt} / {@code generate_few_shot_prompt}, and {@code
 * eval_subject}'s {@code history + instruction}). Both benchmarks share the layout; they differ in
 * the system prompt and the subject name ({@link McBenchmark}).
 */
public final class McPrompt {
  private McPrompt() {}

  /** One question: its text, the four options, and its answer ("A".."D", or "NA"). */
  public record Example(
      int index, int line, String question, List<String> options, String answer) {}

  static final List<String> LETTERS = List.of("A", "B", "C", "D");

  /** The few-shot header, naming the subject. */
  static String header(String subject) {
    return "以下是中国关于" + subject + "考试的单项选择题，请选出其中的正确答案。\n\n";
  }

  /** The question and its options: {@code q\nA. a\nB. b\nC. c\nD. d}. */
  static String body(Example e) {
    StringBuilder sb = new StringBuilder(e.question());
    for (int i = 0; i < 4; i++) {
      sb.append('\n').append(LETTERS.get(i)).append(". ").append(e.options().get(i));
    }
    return sb.toString();
  }

  /**
   * The few-shot history before the question: the header and {@code shots} answered examples.
   * Without the template each example is {@code body\n答案：X\n\n}; with it the header becomes the
   * first instruction of an Alpaca-2 prompt answered by {@code 好的，我会结合{subject}相关知识回答}, followed by
   * one {@code [INST] body\n答案：[/INST]X\n} per example (no BOS/EOS between turns, no system prompt
   * — the scripts' own join).
   */
  public static String history(
      McBenchmark b, String subject, List<Example> shots, boolean withPrompt) {
    StringBuilder sb = new StringBuilder();
    if (withPrompt) {
      sb.append(Alpaca2Template.prompt(header(subject), b.systemPrompt()));
      sb.append("好的，我会结合").append(subject).append("相关知识回答");
      for (Example e : shots) {
        sb.append("[INST] ").append(body(e)).append("\n答案：[/INST]").append(e.answer());
        sb.append('\n');
      }
    } else {
      sb.append(header(subject));
      for (Example e : shots) {
        sb.append(body(e)).append("\n答案：").append(e.answer()).append("\n\n");
      }
    }
    return sb.toString();
  }

  /**
   * The question as the scripts append it to the history: {@code body\n答案：}, inside the whole
   * Alpaca-2 template (system prompt included — so a few-shot prompt with the template carries the
   * system prompt twice) when {@code withPrompt}.
   */
  public static String question(McBenchmark b, Example e, boolean withPrompt) {
    String q = body(e) + "\n答案：";
    return withPrompt ? Alpaca2Template.prompt(q, b.systemPrompt()) : q;
  }
}
