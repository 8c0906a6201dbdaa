package dev.danlu.train.comm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.tensor.Backend;
import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;

/** ddp_backend selection and GPU assignment, decided from facts only (no GPU needed). */
class DdpBackendTest {
  private static final OptionalInt NONE = OptionalInt.empty();

  @Test
  void autoOnTheCpuBackendIsTcpEvenWithAnAssignedGpu() {
    DdpBackend.Choice c = DdpBackend.choose("auto", false, OptionalInt.of(0), "none");
    assertEquals("tcp", c.kind());
    assertEquals(-1, c.cudaDevice());
    assertTrue(c.reason().contains("CPU backend"), c.reason());
  }

  @Test
  void autoOnCudaIsNcclOnTheAssignedGpuAndTcpWithoutOne() {
    DdpBackend.Choice c = DdpBackend.choose("auto", true, OptionalInt.of(3), "none");
    assertEquals("nccl", c.kind());
    assertEquals(3, c.cudaDevice());
    DdpBackend.Choice t = DdpBackend.choose("auto", true, NONE, "4 workers but 2 GPUs");
    assertEquals("tcp", t.kind());
    assertTrue(t.reason().contains("4 workers but 2 GPUs"), t.reason());
  }

  @Test
  void tcpIsTcpWhateverTheHardware() {
    assertEquals("tcp", DdpBackend.choose("tcp", true, OptionalInt.of(0), "").kind());
  }

  @Test
  void ncclOnTheCpuBackendSaysHowToGetCuda() {
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () -> DdpBackend.choose("nccl", false, OptionalInt.of(0), "none"));
    for (String hint : List.of("ddp_backend=nccl", "mvn -Pcuda", "GPU executors", "tcp")) {
      assertTrue(e.getMessage().contains(hint), hint + " missing in: " + e.getMessage());
    }
  }

  @Test
  void theClasspathCheckAgreesWithTheBackendNd4jLoads() {
    // the driver-side check (launcher Preflight) looks for nd4j-cuda without loading ND4J
    assertEquals(Backend.loaded() == Backend.Kind.CUDA, DdpBackend.cudaBuild());
  }

  @Test
  void ncclWithoutAGpuForThisRankSaysWhy() {
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () -> DdpBackend.choose("nccl", true, NONE, DdpBackend.noSparkDeviceWhy()));
    assertTrue(e.getMessage().contains("spark.task.resource.gpu.amount=1"), e.getMessage());
  }

  @Test
  void unknownValuesNameTheKeyAndTheAllowedOnes() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> DdpBackend.choose("gloo", false, NONE, ""));
    assertTrue(e.getMessage().contains("ddp_backend"), e.getMessage());
    assertTrue(e.getMessage().contains("[auto, tcp, nccl]"), e.getMessage());
  }

  @Test
  void trainLocalWorkerIGetsLocalGpuIOnlyIfEveryWorkerGetsOne() {
    assertEquals(OptionalInt.of(0), DdpBackend.localDevice(0, 2, 2));
    assertEquals(OptionalInt.of(1), DdpBackend.localDevice(1, 2, 8));
    // 3 workers, 2 visible GPUs: no worker takes one, so all three agree on tcp under auto
    for (int r = 0; r < 3; r++) {
      assertEquals(NONE, DdpBackend.localDevice(r, 3, 2));
    }
    assertEquals(NONE, DdpBackend.localDevice(0, 1, 0));
    assertThrows(IllegalArgumentException.class, () -> DdpBackend.localDevice(2, 2, 4));
    String why = DdpBackend.noLocalDeviceWhy(3, 2, "4,5");
    assertTrue(why.contains("CUDA_VISIBLE_DEVICES=4,5") && why.contains("--nproc ≤ 2"), why);
  }

  @Test
  void sparkTaskGpuIsItsOneAssignedOrdinal() {
    assertEquals(NONE, DdpBackend.sparkDevice(List.of()));
    assertEquals(OptionalInt.of(5), DdpBackend.sparkDevice(List.of(" 5")));
    IllegalStateException two =
        assertThrows(IllegalStateException.class, () -> DdpBackend.sparkDevice(List.of("0", "1")));
    assertTrue(two.getMessage().contains("spark.task.resource.gpu.amount=1"), two.getMessage());
    for (String bad : List.of("GPU-8f3a", "-1", "")) {
      IllegalStateException e =
          assertThrows(IllegalStateException.class, () -> DdpBackend.sparkDevice(List.of(bad)));
      assertTrue(e.getMessage().contains("discovery script"), e.getMessage());
    }
  }
}
