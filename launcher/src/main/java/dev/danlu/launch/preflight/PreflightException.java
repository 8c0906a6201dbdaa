package dev.danlu.launch.preflight;

import dev.danlu.data.cli.UserError;

/** The run cannot start; the message lists every problem found, each naming its file or key. */
public final class PreflightException extends RuntimeException implements UserError {
  private static final long serialVersionUID = 1L;

  public PreflightException(String message) {
    super(message);
  }
}
