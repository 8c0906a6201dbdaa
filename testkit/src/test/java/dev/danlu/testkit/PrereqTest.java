package dev.danlu.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.opentest4j.TestAbortedException;

/** The skip messages scripts/test-summary.py classifies, and the float helpers' arithmetic. */
class PrereqTest {
  @Test
  void missingPythonModuleSkipsNamingItAndItsPackage() {
    TestAbortedException e =
        assertThrows(TestAbortedException.class, () -> Prereq.python("danlu_no_such_module"));
    assertTrue(e.getMessage().contains(Prereq.SETUP), e.getMessage());
    assertTrue(
        e.getMessage().contains("python3 cannot import danlu_no_such_module (Debian package"),
        e.getMessage());
  }

  @Test
  void missingCommandSkipsNamingItsPackage() {
    TestAbortedException e =
        assertThrows(
            TestAbortedException.class,
            () -> Prereq.commands("sentencepiece", "danlu-no-such-command"));
    assertTrue(
        e.getMessage()
            .contains(
                Prereq.SETUP + " danlu-no-such-command not on PATH (Debian package sentencepiece)"),
        e.getMessage());
  }

  @Test
  void missingSharedFixtureSkipsWithTheOtherPrefix() {
    TestAbortedException e =
        assertThrows(
            TestAbortedException.class, () -> Prereq.shared("fixtures/danlu-no-such-fixture"));
    assertTrue(e.getMessage().contains(Prereq.SHARED + " missing fixture "), e.getMessage());
  }

  @Test
  void ulpDistanceCountsRepresentableFloats() {
    assertEquals(0, Floats.ulpDistance(0f, -0f));
    assertEquals(1, Floats.ulpDistance(1f, Math.nextUp(1f)));
    assertEquals(2, Floats.ulpDistance(-Float.MIN_VALUE, Float.MIN_VALUE));
    assertEquals(0, Floats.ulpDistance(Float.NaN, Float.NaN));
    assertEquals(Long.MAX_VALUE, Floats.ulpDistance(Float.NaN, 1f));
    assertEquals(1e-3, Floats.relError(new float[] {1.001f, 0f}, new float[] {1f, 0f}), 1e-7);
    assertEquals(2 * 23 * 0x1p-24, Floats.reorderBound(24), 0);
  }
}
