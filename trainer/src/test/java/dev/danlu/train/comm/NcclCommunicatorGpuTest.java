package dev.danlu.train.comm;

import static org.junit.jupiter.api.Assumptions.abort;

import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Runs only where CUDA, NCCL and GPUs are present; skipped (not failed) elsewhere. The two-GPU case
 * joins the ranks the way train-local does: unique id through a real {@link MasterRendezvous}.
 */
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
      ReduceScatterVTest.checkAgainstDoubleSums(List.of(c));
    }
  }

  @Test
  void twoGpusJoinThroughTheMasterRendezvousAndFollowTheContract() throws Exception {
    try {
      NcclCommunicator.requireNative();
    } catch (CommException e) {
      abort("no usable CUDA/NCCL here: " + e.getMessage());
    }
    int[] count = new int[1];
    org.bytedeco.cuda.global.cudart.cudaGetDeviceCount(count);
    if (count[0] < 2) {
      abort(count[0] + " CUDA device(s) visible; this case needs 2");
    }
    int port;
    try (java.net.ServerSocket s =
        new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      port = s.getLocalPort();
    }
    byte[] secret = {1, 2, 3, 4};
    List<NcclCommunicator> comms =
        RankThreads.run(
            2,
            r ->
                NcclCommunicator.create(
                    r,
                    2,
                    "127.0.0.1",
                    r,
                    new MasterRendezvous(r, 2, "127.0.0.1", port, secret, 60_000)));
    try {
      CollectiveContract.check(comms, new int[] {1, 17, 100_003});
      // reduceScatterV (grouped ncclReduce per owner) is what overlap_comm runs on GPUs; with two
      // ranks a sum has one order, so tiling must equal one reduce-scatter bit for bit
      ReduceScatterVTest.checkAgainstDoubleSums(comms);
      ReduceScatterVTest.tilingEqualsOneReduceScatter(comms);
    } finally {
      comms.forEach(NcclCommunicator::close);
    }
  }
}
