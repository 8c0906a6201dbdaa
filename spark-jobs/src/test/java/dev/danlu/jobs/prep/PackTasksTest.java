package dev.danlu.jobs.prep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.chunk.SplitChunker;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Packing file splits into Spark tasks: every unit once, loads balanced, sensible task counts. */
class PackTasksTest {
  static WorkUnit unit(int i, long bytes) {
    return new WorkUnit(
        "p" + i,
        null,
        List.of(
            new WorkUnit.Piece(
                "file:/f" + i, bytes, 0, "00", 0, new SplitChunker.Range(0, 0, 0, 1), bytes)));
  }

  @Test
  void everyUnitOnceAndLoadsBalanced() {
    Random r = new Random(1);
    List<WorkUnit> units = new ArrayList<>();
    long total = 0;
    for (int i = 0; i < 1000; i++) {
      long b = 1 + (long) (r.nextDouble() * r.nextDouble() * (8 << 20));
      units.add(unit(i, b));
      total += b;
    }
    List<List<WorkUnit>> tasks = TokenizeStage.packTasks(units, 2);
    assertEquals(Math.max(8, total / (64L << 20) + 1), tasks.size());
    assertEquals(1000, tasks.stream().mapToInt(List::size).sum());
    assertEquals(
        1000, tasks.stream().flatMap(List::stream).map(WorkUnit::shardPrefix).distinct().count());
    long max =
        tasks.stream()
            .mapToLong(t -> t.stream().mapToLong(WorkUnit::estimatedBytes).sum())
            .max()
            .orElseThrow();
    long min =
        tasks.stream()
            .mapToLong(t -> t.stream().mapToLong(WorkUnit::estimatedBytes).sum())
            .min()
            .orElseThrow();
    long largest = units.stream().mapToLong(WorkUnit::estimatedBytes).max().orElseThrow();
    // LPT bound: loads differ by at most the largest unit.
    assertTrue(max - min <= largest, "max " + max + " min " + min + " largest unit " + largest);
  }

  @Test
  void neverMoreTasksThanUnits() {
    List<List<WorkUnit>> tasks =
        TokenizeStage.packTasks(List.of(unit(0, 10), unit(1, 20), unit(2, 5)), 2);
    assertEquals(3, tasks.size());
    assertEquals(20, tasks.get(0).get(0).estimatedBytes(), "largest task first");
  }
}
