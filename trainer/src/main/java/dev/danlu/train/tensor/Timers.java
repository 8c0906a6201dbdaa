package dev.danlu.train.tensor;

import java.util.Map;
import java.util.TreeMap;

/**
 * Optional wall-clock accounting of the training step by category (-Ddanlu.profile=true), for the
 * benchmark's "where does the time go" table. Disabled, a call costs one static-final branch.
 */
public final class Timers {
  public static final boolean ON = Boolean.getBoolean("danlu.profile");
  private static final Map<String, long[]> TOTALS = new TreeMap<>();

  private Timers() {}

  /** Runs {@code body}, adding its wall time to {@code category} when profiling is on. */
  public static void time(String category, Runnable body) {
    if (!ON) {
      body.run();
      return;
    }
    long t0 = System.nanoTime();
    body.run();
    stop(category, t0);
  }

  public static long start() {
    return ON ? System.nanoTime() : 0;
  }

  public static void stop(String category, long start) {
    if (ON) {
      long dt = System.nanoTime() - start;
      synchronized (TOTALS) {
        TOTALS.computeIfAbsent(category, k -> new long[1])[0] += dt;
      }
    }
  }

  /** Seconds per category since the last reset. */
  public static Map<String, Double> snapshot() {
    Map<String, Double> out = new TreeMap<>();
    synchronized (TOTALS) {
      TOTALS.forEach((k, v) -> out.put(k, v[0] / 1e9));
    }
    return out;
  }

  public static void reset() {
    synchronized (TOTALS) {
      TOTALS.clear();
    }
  }
}
