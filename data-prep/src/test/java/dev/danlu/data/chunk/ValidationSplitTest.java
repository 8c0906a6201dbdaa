package dev.danlu.data.chunk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ValidationSplitTest {
  private static final String SHA =
      "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

  @Test
  void fractionIsRespectedAndDeterministic() {
    int n = 200_000;
    int val = 0;
    for (int u = 0; u < n; u++) {
      boolean v = ValidationSplit.isValidation(SHA, u, 0.01);
      assertEquals(v, ValidationSplit.isValidation(SHA, u, 0.01));
      val += v ? 1 : 0;
    }
    // Binomial(200000, 0.01): mean 2000, sd ~44.5; 5 sd either side.
    assertTrue(Math.abs(val - 2000) < 225, "validation units: " + val);
  }

  @Test
  void monotoneInFractionAndEdgeValues() {
    for (int u = 0; u < 1000; u++) {
      if (ValidationSplit.isValidation(SHA, u, 0.05)) {
        assertTrue(
            ValidationSplit.isValidation(SHA, u, 0.2), "a unit stays in validation as f grows");
      }
      assertFalse(ValidationSplit.isValidation(SHA, u, 0));
      assertTrue(ValidationSplit.isValidation(SHA, u, 1));
    }
  }
}
