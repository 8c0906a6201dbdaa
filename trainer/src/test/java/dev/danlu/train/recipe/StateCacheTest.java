package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.danlu.train.model.LlamaState;
import org.junit.jupiter.api.Test;

/** Activation states: reused per shape, never more than two held whatever the shapes. */
class StateCacheTest {
  @Test
  void holdsAtMostTwoShapesLeastRecentlyUsedOut() {
    StateCache c = new StateCache(TinyRun.tinyConfig(), null, false);
    LlamaState a = c.get(2, 8);
    assertSame(a, c.get(2, 8));
    LlamaState b = c.get(2, 16);
    c.get(2, 8); // a is now the most recent
    c.get(1, 24); // evicts b
    assertEquals(StateCache.CAPACITY, c.size());
    assertSame(a, c.get(2, 8));
    assertNotSame(b, c.get(2, 16), "b was dropped and is rebuilt");
    for (int seq = 1; seq <= 64; seq++) {
      c.get(1, seq);
    }
    assertEquals(StateCache.CAPACITY, c.size());
  }
}
