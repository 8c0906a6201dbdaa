package dev.danlu.data.sft;

import java.io.IOException;

/**
 * One split of a prepared instruction dataset (prep-sft): examples by row, each its {@code
 * input_ids} and {@code labels} (-100 over the prompt), of equal length, not padded. The trainer's
 * SFT recipe reads training micro-batches through this.
 */
public interface SftExamples extends AutoCloseable {
  /** Label value ignored by the loss (PyTorch's {@code ignore_index}). */
  int IGNORE_INDEX = -100;

  /** One example. */
  record Example(int[] inputIds, int[] labels) {
    public Example {
      if (inputIds.length != labels.length) {
        throw new IllegalArgumentException(
            "input_ids has " + inputIds.length + " tokens but labels " + labels.length);
      }
    }

    public int length() {
      return inputIds.length;
    }
  }

  /** Number of examples in the split. */
  long rows();

  /** Example {@code row} (0-based). */
  Example read(long row) throws IOException;

  @Override
  void close() throws IOException;
}
