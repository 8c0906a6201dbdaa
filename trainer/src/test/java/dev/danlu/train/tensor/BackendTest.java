package dev.danlu.train.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class BackendTest {
  @Test
  void cpuBackendIsSelectedByDefault() {
    assertEquals(Backend.Kind.CPU, Backend.select());
    assertEquals(Backend.Kind.CPU, Backend.loaded());
    // surefire and bin/danlu put the javacpp natives under danlu's cache, not ~/.javacpp
    assertTrue(System.getProperty("org.bytedeco.javacpp.cachedir").contains("javacpp"));
  }

  @Test
  void askingForCudaWithoutItFailsWithAHint() {
    IllegalStateException e =
        assertThrows(IllegalStateException.class, () -> Backend.check("cuda", Backend.loaded()));
    assertTrue(e.getMessage().contains("-Pcuda"), e.getMessage());
    assertTrue(e.getMessage().contains("-Ddanlu.backend=cpu"), e.getMessage());
  }

  @Test
  void unknownBackendNameIsRejected() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Backend.check("tpu", Backend.Kind.CPU));
    assertTrue(e.getMessage().contains("tpu"), e.getMessage());
  }
}
