package dev.danlu.train.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** Expected values worked out by hand from Hugging Face's lr_lambda formulas. */
class LrScheduleTest {

  @Test
  void warmupStepsRoundUpLikeTrainingArguments() {
    assertEquals(5, LrSchedule.warmupSteps(100, 0.05, 0));
    assertEquals(6, LrSchedule.warmupSteps(101, 0.05, 0)); // 5.05 -> 6
    assertEquals(1, LrSchedule.warmupSteps(10, 0.03, 0)); // 0.3 -> 1
    assertEquals(0, LrSchedule.warmupSteps(10, 0.0, 0));
    assertEquals(7, LrSchedule.warmupSteps(100, 0.05, 7)); // explicit warmup_steps wins
  }

  @Test
  void linearWithWarmup() {
    LrSchedule s = LrSchedule.linear(4, 20);
    assertEquals(0.0, s.factor(0));
    assertEquals(0.25, s.factor(1));
    assertEquals(0.75, s.factor(3));
    assertEquals(1.0, s.factor(4));
    assertEquals(12.0 / 16.0, s.factor(8));
    assertEquals(1.0 / 16.0, s.factor(19));
    assertEquals(0.0, s.factor(20));
    assertEquals(0.0, s.factor(25)); // clamped, never negative
  }

  @Test
  void cosineWithWarmup() {
    LrSchedule s = LrSchedule.cosine(5, 105);
    assertEquals(0.0, s.factor(0));
    assertEquals(0.4, s.factor(2), 1e-15);
    assertEquals(1.0, s.factor(5), 1e-15);
    assertEquals(0.5, s.factor(55), 1e-15); // halfway through decay: cos(pi/2)
    assertEquals(0.5 * (1 + Math.cos(Math.PI * 0.25)), s.factor(30), 1e-15);
    assertEquals(0.5 * (1 + Math.cos(Math.PI * 0.99)), s.factor(104), 1e-15);
    assertEquals(0.0, s.factor(105), 1e-15);
  }

  @Test
  void noWarmupStartsAtFullRate() {
    assertEquals(1.0, LrSchedule.cosine(0, 10).factor(0));
    assertEquals(1.0, LrSchedule.linear(0, 10).factor(0));
  }

  @Test
  void unknownTypeIsRejectedWithTheChoices() {
    var e =
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.byName("polynomial", 1, 2));
    assertEquals(true, e.getMessage().contains("linear, cosine or constant"));
  }
}
