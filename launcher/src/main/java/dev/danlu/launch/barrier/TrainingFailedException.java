package dev.danlu.launch.barrier;

/** Training could not finish; the message names the attempts made and the causes seen. */
public final class TrainingFailedException extends Exception {
  private static final long serialVersionUID = 1L;

  public TrainingFailedException(String message, Throwable cause) {
    super(message, cause);
  }
}
