package dev.danlu.data.sft;

import java.io.IOException;

/** An instruction data file or record that cannot be used; the message names file and record. */
public final class SftFormatException extends IOException {
  private static final long serialVersionUID = 1L;

  public SftFormatException(String message) {
    super(message);
  }
}
