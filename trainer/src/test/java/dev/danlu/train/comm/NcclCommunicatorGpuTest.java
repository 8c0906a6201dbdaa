package dev.danlu.train.comm;

import static org.junit.jupiter.api.Assumptions.abort;

import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Runs only where CUDA, NCCL and a GPU are present; skipped (not failed) elsewhere. */
@Tag("gpu")
class NcclCommunicatorGpuTest {

  @Test
  void singleGpuCollectivesFollowTheContract() throws Exception {
    try {
      NcclCommunicator.requireNative();
    } catch (CommException e) {
      abort("no usable CUDA/NCCL here: " + e.getMessage());
    }
    try (NcclCommunicator c = NcclCommunicator.create(0, 1, 0, List::of)) {
      CollectiveContract.check(List.of(c), new int[] {1, 17, 100_003});
    }
  }
}
