package dev.danlu.data.sft;

import java.util.Objects;

/**
 * One preference pair (prep-pairs): an instruction (with optional input), the response a human
 * preferred and the one they rejected.
 *
 * @param input the optional context; absent or null is the empty string
 */
public record PairRecord(String instruction, String input, String chosen, String rejected) {
  /**
   * The manifest template of a pair dataset: the Alpaca-2 prompt, each pair stored as two
   * consecutive rows (chosen, rejected) of the SFT shard format. The name keeps an SFT run from
   * reading pairs as instruction examples, and the pair recipes from reading instructions.
   */
  public static final String TEMPLATE = "alpaca2-pairs";

  public PairRecord {
    Objects.requireNonNull(instruction, "instruction");
    Objects.requireNonNull(chosen, "chosen");
    Objects.requireNonNull(rejected, "rejected");
    input = input == null ? "" : input;
  }

  /** The instruction record whose output is {@code response}: what SFT would train on. */
  public SftRecord as(String response) {
    return new SftRecord(instruction, input, response);
  }
}
