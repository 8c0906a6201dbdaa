package dev.danlu.train.zero;

/**
 * One rank's partition of the flat trainable-parameter buffer: {@code [offset, offset+size)}. The
 * total is padded up to a multiple of {@code worldSize × alignment}, so every partition has the
 * same size (a reduce-scatter needs equal chunks) and starts aligned; a partition may cut through a
 * parameter. Pure arithmetic, no state.
 */
public record ShardInfo(int offset, int size) {

  /** Padded length of the flat buffer for {@code total} trainable elements. */
  public static int paddedTotal(long total, int worldSize, int alignment) {
    if (worldSize < 1 || alignment < 1) {
      throw new IllegalArgumentException("worldSize and alignment must be >= 1");
    }
    long unit = (long) worldSize * alignment;
    long padded = Math.max(unit, (total + unit - 1) / unit * unit);
    if (padded > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(
          total + " trainable elements do not fit one Java array; split the parameter groups");
    }
    return (int) padded;
  }

  public static ShardInfo of(long total, int worldSize, int rank, int alignment) {
    if (rank < 0 || rank >= worldSize) {
      throw new IllegalArgumentException("rank " + rank + " outside world of " + worldSize);
    }
    int size = paddedTotal(total, worldSize, alignment) / worldSize;
    return new ShardInfo(rank * size, size);
  }

  public int end() {
    return offset + size;
  }

  /** Length of the overlap of {@code [start, start+len)} with this partition (0 if none). */
  public int overlap(int start, int len) {
    return Math.max(0, Math.min(end(), start + len) - Math.max(offset, start));
  }
}
