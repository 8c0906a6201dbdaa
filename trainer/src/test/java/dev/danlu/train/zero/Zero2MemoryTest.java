package dev.danlu.train.zero;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.comm.LocalCommunicator;
import dev.danlu.train.optim.DynamicLossScaler;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Measures each rank's optimizer memory two ways: {@link Zero2Optimizer#stateBytes()} (sum of the
 * actual array lengths) and the heap growth around constructing one rank's optimizer. Both must be
 * 12 bytes × Ψ/N plus padding: fp32 master, m and v for the partition only.
 */
class Zero2MemoryTest {
  private static final int PSI = 12_000_001; // trainable elements; odd so padding shows

  @Test
  void eachRankHoldsTwelveBytesPerElementOfItsPartition() {
    MemoryMXBean mem = ManagementFactory.getMemoryMXBean();
    float[] values = new float[PSI];
    FlatParams[] flats = new FlatParams[5];
    for (int n : new int[] {1, 2, 4}) {
      flats[n] =
          FlatParams.of(List.of(new NamedParam("lm_head.weight", values, new float[PSI])), n, 16);
    }
    for (int n : new int[] {1, 2, 4}) {
      LocalCommunicator comm = LocalCommunicator.group(n).get(n - 1); // construction is local
      long before = usedHeap(mem);
      Zero2Optimizer opt =
          new Zero2Optimizer(
              comm,
              flats[n],
              LeastSquaresProblem.config(1 << 20),
              DynamicLossScaler.deepSpeedDefaults());
      long measured = usedHeap(mem) - before;
      long partition = flats[n].padded() / n;
      long expected = 12L * partition;
      System.out.printf(
          "ZeRO-2 optimizer state, Psi=%d N=%d: stateBytes=%d (12 x %d = 12 x Psi/N + %d padding elements), heap growth %d bytes (%.4f x stateBytes, G1 region %d)%n",
          PSI,
          n,
          opt.stateBytes(),
          partition,
          partition - (PSI + n - 1) / n,
          measured,
          (double) measured / opt.stateBytes(),
          regionBytes());
      assertEquals(expected, opt.stateBytes());
      assertTrue(partition * n - PSI < 16L * n, "padding beyond one alignment unit");
      // G1 stores each large array in whole heap regions, so each of the 3 arrays may round up
      // by up to one region: that (not extra state) is the measured overhead.
      long slack = 3 * regionBytes() + (1 << 20);
      assertTrue(
          measured >= expected - (1 << 20) && measured <= expected + slack,
          "heap grew by "
              + measured
              + " bytes, expected "
              + expected
              + " (+ up to "
              + slack
              + " of G1 region rounding)");
      keep(opt);
    }
  }

  private static Object sink;

  private static void keep(Object o) {
    sink = o; // stays reachable until the next measurement's baseline is taken
  }

  private static long regionBytes() {
    try {
      var bean =
          ManagementFactory.getPlatformMXBean(com.sun.management.HotSpotDiagnosticMXBean.class);
      return Long.parseLong(bean.getVMOption("G1HeapRegionSize").getValue());
    } catch (RuntimeException e) {
      return 32L << 20; // not G1 / not HotSpot: the largest G1 region size as a bound
    }
  }

  private static long usedHeap(MemoryMXBean mem) {
    sink = null;
    for (int i = 0; i < 3; i++) {
      System.gc();
    }
    return mem.getHeapMemoryUsage().getUsed();
  }
}
