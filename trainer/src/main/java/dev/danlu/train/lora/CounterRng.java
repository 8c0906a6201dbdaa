package dev.danlu.train.lora;

/**
 * A counter-based random generator: every number is a pure function of a key and a counter, so a
 * dropout mask or an initial weight is the same whatever the rank, thread or drawing order. The
 * mixing function is SplitMix64's finaliser (Steele, Lea, Flood 2014), applied to a key built by
 * hashing the key parts one after another.
 */
public final class CounterRng {
  private CounterRng() {}

  /** Combines key parts (seed, step, sample, layer, module, ...) into one 64-bit key. */
  public static long key(long... parts) {
    long h = 0x243F6A8885A308D3L;
    for (long p : parts) {
      h = mix(h ^ mix(p + 0x9E3779B97F4A7C15L));
    }
    return h;
  }

  /** A uniform double in [0, 1) for (key, counter), with 53 random bits. */
  public static double uniform(long key, long counter) {
    return (mix(key + counter * 0x9E3779B97F4A7C15L) >>> 11) * 0x1.0p-53;
  }

  /** 64 random bits for (key, counter). */
  public static long bits(long key, long counter) {
    return mix(key + counter * 0x9E3779B97F4A7C15L);
  }

  private static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
