package dev.danlu.train.comm;

/** A peer did not connect, answer or make progress within the configured timeout. */
public class CommTimeoutException extends CommException {
  public CommTimeoutException(String message) {
    super(message);
  }
}
