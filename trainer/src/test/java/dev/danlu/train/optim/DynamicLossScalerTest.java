package dev.danlu.train.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** Traces worked out by hand from DeepSpeed's DynamicLossScaler.update_scale. */
class DynamicLossScalerTest {

  @Test
  void hysteresisDelaysTheFirstDecrease() {
    DynamicLossScaler s = DynamicLossScaler.deepSpeedDefaults();
    assertEquals(65536.0, s.scale());
    s.update(true); // iter 0: budget 2 -> 1, scale kept
    assertEquals(65536.0, s.scale());
    assertEquals(1, s.hysteresisLeft());
    s.update(true); // iter 1: budget exhausted -> halve
    assertEquals(32768.0, s.scale());
    s.update(true); // iter 2: budget stays 1 (only refilled when the scale grows) -> halve again
    assertEquals(16384.0, s.scale());
  }

  @Test
  void growsAfterAWindowOfGoodStepsAndRefillsHysteresis() {
    DynamicLossScaler s = new DynamicLossScaler(1024, 2, 3, 2, 1e-10);
    s.update(true); // iter 0 overflow, budget 1, lastOverflow 0
    s.update(false); // iter 1: (1-0)%3 != 0
    s.update(false); // iter 2
    assertEquals(1024.0, s.scale());
    s.update(false); // iter 3: (3-0)%3 == 0 -> grow, budget 2
    assertEquals(2048.0, s.scale());
    assertEquals(2, s.hysteresisLeft());
    s.update(true); // iter 4: budget 2 -> 1, scale kept
    assertEquals(2048.0, s.scale());
  }

  @Test
  void withoutOverflowTheFirstGrowthIsAtIterationWindowMinusOne() {
    // last_overflow_iter starts at -1, so (iter + 1) % window == 0 first holds at iter = window - 1
    DynamicLossScaler s = new DynamicLossScaler(8, 2, 100, 2, 1e-10);
    for (int i = 0; i < 99; i++) {
      s.update(false);
    }
    assertEquals(8.0, s.scale());
    s.update(false);
    assertEquals(16.0, s.scale());
  }

  @Test
  void stateRoundTrips() {
    DynamicLossScaler a = DynamicLossScaler.deepSpeedDefaults();
    a.update(true);
    a.update(false);
    DynamicLossScaler b = DynamicLossScaler.deepSpeedDefaults();
    b.restore(a.state());
    for (boolean o : new boolean[] {true, false, true, true}) {
      a.update(o);
      b.update(o);
      assertEquals(a.scale(), b.scale());
    }
  }

  @Test
  void overflowAtMinimumScaleStopsTraining() {
    DynamicLossScaler s = new DynamicLossScaler(2, 2, 100, 1, 1);
    s.update(true);
    assertEquals(1.0, s.scale());
    assertThrows(IllegalStateException.class, () -> s.update(true));
  }
}
