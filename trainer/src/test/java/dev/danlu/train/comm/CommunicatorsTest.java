package dev.danlu.train.comm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.io.File;
import java.util.List;
import org.junit.jupiter.api.Test;

class CommunicatorsTest {
  private static CommSpec spec(String kind, int world) {
    return new CommSpec(
        kind, 0, world, "127.0.0.1", new byte[] {1, 2, 3}, 0, TcpRingOptions.defaults());
  }

  @Test
  void ncclOnAHostWithoutCudaFailsWithAClearMessage() {
    assumeFalse(new File("/dev/nvidiactl").exists(), "this host has an NVIDIA driver");
    CommException e =
        assertThrows(CommException.class, () -> Communicators.create(spec("nccl", 1), List::of));
    assertTrue(
        e.getMessage().contains("ddp_backend=nccl") && e.getMessage().contains("ddp_backend=tcp"),
        e.getMessage());
  }

  @Test
  void tcpAndLocalWithOneRankNeedNoPeers() {
    try (Communicator c = Communicators.create(spec("tcp", 1), List::of)) {
      assertEquals("tcp", c.kind());
      float[] b = {1, 2};
      c.allReduce(b, 0, 2, ReduceOp.SUM);
      assertEquals(2f, b[1]);
    }
    try (Communicator c = Communicators.create(spec("local", 1), List::of)) {
      assertEquals("local", c.kind());
    }
  }

  @Test
  void unknownKindsAndMultiRankLocalAreRejected() {
    var e =
        assertThrows(
            IllegalArgumentException.class, () -> Communicators.create(spec("mpi", 2), List::of));
    assertTrue(e.getMessage().contains("tcp"));
    assertThrows(
        IllegalArgumentException.class, () -> Communicators.create(spec("local", 2), List::of));
  }
}
