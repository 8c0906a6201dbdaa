package dev.danlu.launch.smoke;

/**
 * The smoke run's arithmetic, apart from any I/O, so tests can recompute the expected result
 * independently of the ring: every rank holds one 64-bit value; a step needs all of them.
 */
public final class RingSmokeState {
  private RingSmokeState() {}

  public static long[] initial(long seed, int worldSize) {
    long[] v = new long[worldSize];
    for (int r = 0; r < worldSize; r++) {
      v[r] = mix(seed + r);
    }
    return v;
  }

  /** Values after step {@code step} (1-based) given all values before it. */
  public static long[] next(long[] before, long step) {
    long weighted = 0;
    for (int j = 0; j < before.length; j++) {
      weighted += (j + 1) * before[j];
    }
    long[] after = new long[before.length];
    for (int r = 0; r < before.length; r++) {
      after[r] = mix(before[r] + 0x9E3779B97F4A7C15L * step ^ Long.rotateLeft(weighted, r + 1));
    }
    return after;
  }

  /** A stand-in loss that falls with the step, with per-value noise, for the progress curve. */
  static double loss(long value, long step) {
    double noise = (value >>> 11) * 0x1.0p-53 - 0.5;
    return 4.0 / (1 + 0.1 * step) * (1 + 0.05 * noise);
  }

  /** SplitMix64's finalizer: a bijective scrambler. */
  static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
