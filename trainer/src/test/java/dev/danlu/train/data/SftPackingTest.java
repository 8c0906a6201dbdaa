package dev.danlu.train.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Best-fit-decreasing packing: every example once, rows within capacity, deterministic. */
class SftPackingTest {
  @Test
  void bestFitDecreasingOnASmallCase() {
    // sorted: 6(id 1), 5(id 0), 4(id 3), 3(id 2), 2(id 4), 2(id 5); capacity 10
    // 6 -> row0 (room 4); 5 -> row1 (room 5); 4 -> best fit row0 (room 0);
    // 3 -> row1 (room 2); 2 -> row1 (room 0); 2 -> new row2
    SftPacking p = SftPacking.pack(new int[] {5, 6, 3, 4, 2, 2}, 10);
    assertEquals(3, p.rows());
    assertArrayEquals(new int[] {1, 3}, p.examples(0));
    assertArrayEquals(new int[] {0, 2, 4}, p.examples(1));
    assertArrayEquals(new int[] {5}, p.examples(2));
    assertEquals(10, p.tokens(0));
    assertEquals(10, p.tokens(1));
    assertEquals(2, p.tokens(2));
    assertEquals(22, p.totalTokens());
  }

  @Test
  void everyExampleExactlyOnceWithinCapacityAndDenselyPacked() {
    SplittableRandom r = new SplittableRandom(3);
    int n = 5000;
    int cap = 512;
    int[] lengths = new int[n];
    long total = 0;
    for (int i = 0; i < n; i++) {
      lengths[i] = 20 + r.nextInt(400);
      total += lengths[i];
    }
    SftPacking p = SftPacking.pack(lengths, cap);
    int[] seen = new int[n];
    for (int row = 0; row < p.rows(); row++) {
      int sum = 0;
      for (int id : p.examples(row)) {
        seen[id]++;
        sum += lengths[id];
      }
      assertEquals(sum, p.tokens(row));
      assertTrue(sum <= cap, "row " + row + " holds " + sum);
    }
    for (int i = 0; i < n; i++) {
      assertEquals(1, seen[i], "example " + i);
    }
    assertEquals(total, p.totalTokens());
    // lower bound ceil(total / cap) rows; best fit decreasing stays within a few percent of it
    long bound = (total + cap - 1) / cap;
    assertTrue(p.rows() <= bound * 1.05, p.rows() + " rows for a bound of " + bound);
    // a function of the lengths only
    SftPacking again = SftPacking.pack(lengths.clone(), cap);
    for (int row = 0; row < p.rows(); row++) {
      assertArrayEquals(p.examples(row), again.examples(row));
    }
  }

  @Test
  void refusesAnExampleLongerThanARow() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> SftPacking.pack(new int[] {3, 9}, 8));
    assertTrue(e.getMessage().contains("example 1 has 9 tokens"), e.getMessage());
  }
}
