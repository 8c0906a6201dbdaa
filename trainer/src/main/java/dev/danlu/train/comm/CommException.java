package dev.danlu.train.comm;

/**
 * A collective failed: a peer is unreachable, too slow, died, or failed authentication. The message
 * names the peer (rank and host:port) so the operator knows which worker to look at. Unchecked
 * because no caller can recover mid-collective: the whole job restarts from a checkpoint.
 */
public class CommException extends RuntimeException {
  public CommException(String message) {
    super(message);
  }

  public CommException(String message, Throwable cause) {
    super(message, cause);
  }
}
