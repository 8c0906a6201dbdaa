package dev.danlu.train.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** group_by_length: a reordering within megabatches, world-size independent, less padding. */
class LengthGroupingTest {
  static final int ROWS = 1000;
  static final int[] LEN = new int[ROWS];

  static {
    SplittableRandom r = new SplittableRandom(4);
    for (int i = 0; i < ROWS; i++) {
      LEN[i] = 8 + r.nextInt(500);
    }
  }

  static long[] step(BatchPlan p, LengthGrouping g, long s) throws Exception {
    List<Long> rows = new ArrayList<>();
    for (int r = 0; r < p.worldSize(); r++) {
      for (int m = 0; m < p.accumulationSteps(); m++) {
        for (long row : g != null ? g.rowsFor(s, r, m) : p.rowsFor(s, r, m)) {
          rows.add(row);
        }
      }
    }
    return rows.stream().mapToLong(Long::longValue).toArray();
  }

  @Test
  void reordersOnlyWithinMegabatchesAndNotByWorldSize() throws Exception {
    BatchPlan one = new BatchPlan(7, ROWS, 2, 4, 1);
    LengthGrouping g1 = new LengthGrouping(one, row -> LEN[(int) row]);
    long steps = one.stepsPerEpoch(); // 125: two megabatches (50 + 50) and a partial one (25)
    for (int[] shape : new int[][] {{1, 4, 2}, {2, 2, 2}, {4, 1, 2}, {8, 1, 1}}) {
      BatchPlan p = new BatchPlan(7, ROWS, shape[2], shape[1], shape[0]);
      LengthGrouping g = new LengthGrouping(p, row -> LEN[(int) row]);
      for (long s = 0; s < steps; s += 7) {
        long[] a = step(one, g1, s);
        long[] b = step(p, g, s);
        Arrays.sort(a);
        Arrays.sort(b);
        assertArrayEquals(a, b, "step " + s + " world " + shape[0]);
      }
    }
    // each megabatch holds the same rows as without grouping, longest first
    for (long mb = 0; mb * LengthGrouping.MEGABATCH < steps; mb++) {
      long from = mb * LengthGrouping.MEGABATCH;
      long to = Math.min(from + LengthGrouping.MEGABATCH, steps);
      List<Long> plain = new ArrayList<>();
      List<Long> grouped = new ArrayList<>();
      for (long s = from; s < to; s++) {
        for (long r : step(one, null, s)) {
          plain.add(r);
        }
        for (long r : step(one, g1, s)) {
          grouped.add(r);
        }
      }
      assertEquals(plain.stream().sorted().toList(), grouped.stream().sorted().toList());
      for (int i = 1; i < grouped.size(); i++) {
        assertTrue(LEN[grouped.get(i - 1).intValue()] >= LEN[grouped.get(i).intValue()]);
      }
    }
  }

  @Test
  void padsFarLess() throws Exception {
    BatchPlan p = new BatchPlan(3, ROWS, 4, 2, 1);
    LengthGrouping g = new LengthGrouping(p, row -> LEN[(int) row]);
    long real = 0;
    long padded = 0;
    long groupedPadded = 0;
    for (long s = 0; s < p.stepsPerEpoch(); s++) {
      for (int m = 0; m < 2; m++) {
        padded += 4L * max(p.rowsFor(s, 0, m));
        long[] rows = g.rowsFor(s, 0, m);
        groupedPadded += 4L * max(rows);
        for (long r : rows) {
          real += LEN[(int) r];
        }
      }
    }
    double plainPad = 1 - (double) real / padded;
    double groupedPad = 1 - (double) real / groupedPadded;
    System.out.printf("padding fraction: plain %.3f, group_by_length %.3f%n", plainPad, groupedPad);
    assertTrue(groupedPad < plainPad / 5, plainPad + " vs " + groupedPad);
  }

  static int max(long[] rows) {
    int m = 0;
    for (long r : rows) {
      m = Math.max(m, LEN[(int) r]);
    }
    return m;
  }
}
