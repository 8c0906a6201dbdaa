package dev.danlu.train.data;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.TreeMap;

/**
 * Which examples share a packed row ({@code packing: true}): best-fit decreasing over the examples'
 * lengths into rows of at most {@code capacity} tokens. Longest examples first; each goes into the
 * open row with the least room that still fits it (ties: the row opened first), else opens a row. A
 * function of the lengths and the capacity only (ties between equal lengths broken by example id),
 * so every rank and every resumed run computes the same rows, which the {@link BatchPlan} then
 * orders by global ids like any other rows. Rows keep their examples across epochs.
 */
public final class SftPacking {
  private final int[] examples; // example ids, row after row
  private final int[] rowStart; // rows() + 1 offsets into examples
  private final int[] rowTokens;

  private SftPacking(int[] examples, int[] rowStart, int[] rowTokens) {
    this.examples = examples;
    this.rowStart = rowStart;
    this.rowTokens = rowTokens;
  }

  /**
   * @param lengths each example's length in tokens, each in [1, capacity]
   */
  public static SftPacking pack(int[] lengths, int capacity) {
    int n = lengths.length;
    for (int i = 0; i < n; i++) {
      if (lengths[i] < 1 || lengths[i] > capacity) {
        throw new IllegalArgumentException(
            "example " + i + " has " + lengths[i] + " tokens; a packed row holds 1.." + capacity);
      }
    }
    // longest first, equal lengths by id: sort (capacity - length, id) packed in one long
    int[] byLength = new int[n];
    long[] keys = new long[n];
    for (int i = 0; i < n; i++) {
      keys[i] = ((long) (capacity - lengths[i]) << 32) | i;
    }
    Arrays.sort(keys);
    for (int i = 0; i < n; i++) {
      byLength[i] = (int) keys[i];
    }
    // room left -> open rows with that much room, in the order they got it
    TreeMap<Integer, ArrayDeque<Integer>> open = new TreeMap<>();
    int[] rowOf = new int[n];
    int[] used = new int[Math.max(1, n)];
    int rows = 0;
    for (int id : byLength) {
      int len = lengths[id];
      Integer room = open.ceilingKey(len);
      int row;
      if (room == null) {
        row = rows++;
      } else {
        ArrayDeque<Integer> q = open.get(room);
        row = q.pollFirst();
        if (q.isEmpty()) {
          open.remove(room);
        }
      }
      rowOf[id] = row;
      used[row] += len;
      int left = capacity - used[row];
      if (left > 0) {
        open.computeIfAbsent(left, k -> new ArrayDeque<>()).addLast(row);
      }
    }
    // lay the rows out; within a row, examples in the order they were placed (longest first)
    int[] start = new int[rows + 1];
    for (int id = 0; id < n; id++) {
      start[rowOf[id] + 1]++;
    }
    for (int r = 0; r < rows; r++) {
      start[r + 1] += start[r];
    }
    int[] fill = Arrays.copyOf(start, rows);
    int[] out = new int[n];
    for (int id : byLength) {
      out[fill[rowOf[id]]++] = id;
    }
    return new SftPacking(out, start, Arrays.copyOf(used, rows));
  }

  /** Number of packed rows. */
  public int rows() {
    return rowTokens.length;
  }

  /** The example ids of packed row {@code row}, in their order in the row. */
  public int[] examples(int row) {
    return Arrays.copyOfRange(examples, rowStart[row], rowStart[row + 1]);
  }

  /** Tokens in packed row {@code row} (the sum of its examples' lengths). */
  public int tokens(int row) {
    return rowTokens[row];
  }

  /** Total tokens over all rows. */
  public long totalTokens() {
    long t = 0;
    for (int v : rowTokens) {
      t += v;
    }
    return t;
  }
}
