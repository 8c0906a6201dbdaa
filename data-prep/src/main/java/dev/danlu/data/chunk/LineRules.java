package dev.danlu.data.chunk;

/**
 * Which lines become examples. One place, because the split planner (which never tokenizes) and the
 * tokenizing pass must agree exactly on line numbering, or group boundaries would shift.
 *
 * <p>A line is its bytes up to {@code '\n'}, minus one trailing {@code '\r'}. A line of zero
 * characters produces no example and does not count toward a group. A line longer than the
 * configured limit (raw length, newline excluded) produces no example either, and is reported per
 * file as oversized.
 */
public final class LineRules {
  /** Default limit on one line: 8 MiB, far above any real paragraph, small enough for any heap. */
  public static final int DEFAULT_MAX_LINE_BYTES = 8 << 20;

  private LineRules() {}

  /**
   * @param rawLength bytes of the line without its newline (a trailing CR included)
   * @param onlyCr true if the line consists of a single {@code '\r'}
   */
  public static boolean counts(long rawLength, boolean onlyCr, int maxLineBytes) {
    return rawLength > 0 && !onlyCr && !isOversized(rawLength, maxLineBytes);
  }

  public static boolean isOversized(long rawLength, int maxLineBytes) {
    return rawLength > maxLineBytes;
  }
}
