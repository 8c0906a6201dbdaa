package dev.danlu.train.data;

/**
 * The order in which a training run visits the rows of a dataset: a seeded pseudo-random
 * permutation of {@code [0, rows)} per epoch, computed index by index (no table), so that
 *
 * <ul>
 *   <li>it depends only on (seed, epoch, rows) — never on the world size, the rank, or how many
 *       draws a process made before — so N ranks see exactly what 1 rank sees, and a resumed run
 *       continues exactly where the uninterrupted one would be;
 *   <li>memory is O(1): a 120 GB corpus has ~10⁸ blocks, and a materialised shuffle would cost
 *       every rank hundreds of MB.
 * </ul>
 *
 * <p>The permutation is a balanced Feistel network over the smallest even-bit domain holding {@code
 * rows}, with cycle walking to stay inside {@code [0, rows)}: a bijection by construction.
 */
public final class GlobalOrder {
  private static final int ROUNDS = 6;

  private final long rows;
  private final int halfBits;
  private final long halfMask;
  private final long[] roundKeys = new long[ROUNDS];

  /**
   * @param seed the run's seed ({@code seed} in the config)
   * @param epoch 0-based epoch; each epoch has its own permutation
   * @param rows number of rows to permute (> 0)
   */
  public GlobalOrder(long seed, int epoch, long rows) {
    if (rows <= 0) {
      throw new IllegalArgumentException("cannot order an empty dataset (rows = " + rows + ")");
    }
    this.rows = rows;
    int bits = Math.max(2, 64 - Long.numberOfLeadingZeros(rows - 1));
    this.halfBits = (bits + 1) / 2;
    this.halfMask = (1L << halfBits) - 1;
    for (int r = 0; r < ROUNDS; r++) {
      roundKeys[r] = mix(mix(seed ^ 0x9E3779B97F4A7C15L) + epoch * 0xBF58476D1CE4E5B9L + r);
    }
  }

  /** Number of rows permuted. */
  public long rows() {
    return rows;
  }

  /** The row visited at position {@code position} of this epoch, {@code 0 ≤ position < rows}. */
  public long rowAt(long position) {
    if (position < 0 || position >= rows) {
      throw new IndexOutOfBoundsException("position " + position + " outside [0, " + rows + ")");
    }
    long x = position;
    do {
      x = permuteDomain(x);
    } while (x >= rows); // cycle walking: the domain is at most 4× rows, so this ends fast
    return x;
  }

  private long permuteDomain(long x) {
    long left = x >>> halfBits;
    long right = x & halfMask;
    for (int r = 0; r < ROUNDS; r++) {
      long next = left ^ (mix(right ^ roundKeys[r]) & halfMask);
      left = right;
      right = next;
    }
    return (left << halfBits) | right;
  }

  /** SplitMix64's finaliser: a well-mixed 64-bit hash of one 64-bit value. */
  static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
