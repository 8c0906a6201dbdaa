package dev.danlu.train.comm;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class LocalCommunicatorTest {

  @Test
  void collectivesMatchDoubleReferenceForOneToFourRanks() throws Exception {
    for (int n = 1; n <= 4; n++) {
      CollectiveContract.check(LocalCommunicator.group(n), new int[] {0, 1, 5, 1001});
    }
  }

  @Test
  void rankThatNeverArrivesFailsTheOthersWithinTimeout() {
    var comms = LocalCommunicator.group(2, 300);
    long t0 = System.nanoTime();
    CommException e = assertThrows(CommException.class, () -> comms.get(0).barrier());
    assertTrue(System.nanoTime() - t0 < 5_000_000_000L);
    assertTrue(e.getMessage().contains("300 ms"), e.getMessage());
  }
}
