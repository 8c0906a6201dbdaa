package dev.danlu.launch.preflight;

/** The run cannot start; the message lists every problem found, each naming its file or key. */
public final class PreflightException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public PreflightException(String message) {
    super(message);
  }
}
