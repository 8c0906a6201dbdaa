package dev.danlu.launch.barrier;

/**
 * A rank's failure as it leaves the executor: the message names the rank, host, executor and the
 * root cause, because Spark reports a failed task to the driver by exception class and message, and
 * the original cause may not even be deserializable on the driver.
 */
public final class RankFailure extends RuntimeException {
  private static final long serialVersionUID = 1L;

  RankFailure(int rank, int worldSize, int attempt, String host, String executor, Throwable t) {
    super(
        "rank "
            + rank
            + "/"
            + worldSize
            + " (attempt "
            + attempt
            + ", executor "
            + executor
            + " on "
            + host
            + ") failed: "
            + describe(rootCause(t)),
        t);
  }

  static Throwable rootCause(Throwable t) {
    Throwable root = t;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    return root;
  }

  static String describe(Throwable t) {
    return t.getClass().getName() + (t.getMessage() == null ? "" : ": " + t.getMessage());
  }
}
