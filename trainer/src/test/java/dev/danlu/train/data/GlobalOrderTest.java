package dev.danlu.train.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class GlobalOrderTest {

  @ParameterizedTest
  @ValueSource(longs = {1, 2, 3, 5, 7, 64, 100, 1000, 4097, 65_537})
  void isAPermutation(long rows) {
    GlobalOrder order = new GlobalOrder(42, 0, rows);
    BitSet seen = new BitSet();
    for (long i = 0; i < rows; i++) {
      long r = order.rowAt(i);
      assertTrue(r >= 0 && r < rows, "row " + r + " out of range");
      assertTrue(!seen.get((int) r), "row " + r + " visited twice");
      seen.set((int) r);
    }
    assertEquals(rows, seen.cardinality());
  }

  @Test
  void dependsOnSeedAndEpochOnly() {
    long rows = 10_000;
    long[] a = take(new GlobalOrder(7, 3, rows), 50);
    long[] b = take(new GlobalOrder(7, 3, rows), 50);
    assertArrayEquals(a, b);
    assertNotEquals(Arrays.toString(a), Arrays.toString(take(new GlobalOrder(8, 3, rows), 50)));
    assertNotEquals(Arrays.toString(a), Arrays.toString(take(new GlobalOrder(7, 4, rows), 50)));
  }

  @Test
  void looksShuffled() {
    // Not a statistical test suite: the first tenth of an epoch should spread over the whole range
    // and rarely keep neighbours adjacent.
    long rows = 100_000;
    GlobalOrder order = new GlobalOrder(1, 0, rows);
    int[] deciles = new int[10];
    int adjacent = 0;
    long prev = -2;
    for (long i = 0; i < rows / 10; i++) {
      long r = order.rowAt(i);
      deciles[(int) (r * 10 / rows)]++;
      if (Math.abs(r - prev) == 1) {
        adjacent++;
      }
      prev = r;
    }
    for (int d : deciles) {
      assertTrue(d > 800 && d < 1200, "uneven spread " + Arrays.toString(deciles));
    }
    assertTrue(adjacent < 20, "too many adjacent pairs: " + adjacent);
  }

  @Test
  void hugeDatasetsNeedNoTable() {
    long rows = 3_000_000_000L;
    GlobalOrder order = new GlobalOrder(5, 0, rows);
    long r = order.rowAt(rows - 1);
    assertTrue(r >= 0 && r < rows);
  }

  @Test
  void stepRowsAreTheSameSetForEveryWorldSizeWithTheSameGlobalBatch() {
    long rows = 1003;
    BatchPlan oneRank = new BatchPlan(11, rows, 1, 4, 1);
    BatchPlan fourRanks = new BatchPlan(11, rows, 1, 1, 4);
    BatchPlan twoByTwo = new BatchPlan(11, rows, 2, 1, 2);
    assertEquals(250, oneRank.stepsPerEpoch());
    for (long step : new long[] {0, 1, 249, 250, 777}) {
      List<Long> a = stepRows(oneRank, step);
      assertEquals(a, stepRows(fourRanks, step));
      assertEquals(a, stepRows(twoByTwo, step));
      assertEquals(4, a.stream().distinct().count());
    }
  }

  @Test
  void anEpochVisitsDistinctRowsAndTheNextReshuffles() {
    BatchPlan plan = new BatchPlan(3, 100, 2, 3, 2);
    assertEquals(8, plan.stepsPerEpoch()); // 100 / 12, 4 rows dropped
    BitSet seen = new BitSet();
    for (long s = 0; s < plan.stepsPerEpoch(); s++) {
      for (long r : stepRows(plan, s)) {
        assertTrue(!seen.get((int) r), "row " + r + " twice in one epoch");
        seen.set((int) r);
      }
    }
    assertEquals(96, seen.cardinality());
    assertEquals(1, plan.epochOf(8));
    assertNotEquals(stepRows(plan, 0), stepRows(plan, 8));
    assertEquals(12, plan.totalSteps(0, 1.5));
    assertEquals(5, plan.totalSteps(5, 1.5));
  }

  @Test
  void tooSmallADatasetIsAClearError() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> new BatchPlan(1, 10, 4, 2, 2));
    assertTrue(e.getMessage().contains("fewer than one global batch of 16"), e.getMessage());
  }

  private static List<Long> stepRows(BatchPlan plan, long step) {
    List<Long> out = new ArrayList<>();
    for (int r = 0; r < plan.worldSize(); r++) {
      for (int m = 0; m < plan.accumulationSteps(); m++) {
        for (long row : plan.rowsFor(step, r, m)) {
          out.add(row);
        }
      }
    }
    return out;
  }

  private static long[] take(GlobalOrder order, int n) {
    long[] out = new long[n];
    for (int i = 0; i < n; i++) {
      out[i] = order.rowAt(i);
    }
    return out;
  }
}
