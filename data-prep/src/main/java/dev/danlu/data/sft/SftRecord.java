package dev.danlu.data.sft;

import java.util.Objects;

/**
 * One Stanford-Alpaca instruction record.
 *
 * @param input the optional context; an absent or null {@code input} is the empty string
 */
public record SftRecord(String instruction, String input, String output) {
  public SftRecord {
    Objects.requireNonNull(instruction, "instruction");
    Objects.requireNonNull(output, "output");
    input = input == null ? "" : input;
  }
}
