package dev.danlu.train.comm;

import java.util.List;
import java.util.OptionalInt;

/**
 * The run-time choice of collective backend, config key {@code ddp_backend} (Hugging Face
 * TrainingArguments' name): {@code tcp}, {@code nccl}, or {@code auto} = NCCL when ND4J loaded its
 * CUDA backend and this rank has a GPU, TCP otherwise. Pure decisions over facts the caller gathers
 * (which ND4J backend loaded, which GPU the launcher assigned), so they are unit-tested without a
 * GPU; the callers are {@code WorkerCli} (train-local) and the launcher's {@code TrainerRankWork}
 * (Spark).
 *
 * <p>Every rank must decide the same way, or the ranks would wait in different collectives. On one
 * host (train-local) that holds because {@link #localDevice} says "no GPU" for every rank as soon
 * as one rank lacks one; on Spark the task resource profile gives every task the same GPU count.
 */
public final class DdpBackend {
  /** The values of {@code ddp_backend}. */
  public static final List<String> VALUES = List.of("auto", "tcp", "nccl");

  /** What to do when NCCL is asked of a build without ND4J's CUDA backend. */
  public static final String NO_CUDA_BUILD =
      "ddp_backend=nccl but this build runs ND4J's CPU backend (nd4j-native): NCCL needs a"
          + " CUDA build and a GPU per rank. Build with 'mvn -Pcuda package' (nd4j-cuda-11.6 and"
          + " the CUDA 11.6 / NCCL natives) and run on GPU hosts or GPU executors"
          + " (spark.task.resource.gpu.amount=1), or set ddp_backend=tcp (or auto) to"
          + " train on CPUs.";

  /** ND4J's CUDA backend class, present only in a {@code mvn -Pcuda} build. */
  static final String CUDA_BACKEND_CLASS = "org.nd4j.linalg.jcublas.JCublasBackend";

  private DdpBackend() {}

  /**
   * Whether this classpath holds ND4J's CUDA backend, without loading it (the Spark driver may have
   * no GPU): lets the driver refuse {@code ddp_backend=nccl} for a CPU-only jar before any job.
   */
  public static boolean cudaBuild() {
    try {
      Class.forName(CUDA_BACKEND_CLASS, false, DdpBackend.class.getClassLoader());
      return true;
    } catch (ClassNotFoundException | LinkageError e) {
      return false;
    }
  }

  /**
   * What this rank runs.
   *
   * @param kind "tcp" or "nccl" (a {@link CommSpec} kind)
   * @param cudaDevice the CUDA device ordinal NCCL drives, -1 for TCP
   * @param reason one line for the start-up log saying why
   */
  public record Choice(String kind, int cudaDevice, String reason) {}

  /**
   * Decides the backend.
   *
   * @param requested the {@code ddp_backend} value
   * @param cudaBackend whether ND4J loaded its CUDA backend ({@code Backend.loaded()})
   * @param device this rank's GPU, empty when it has none ({@link #localDevice} / {@link
   *     #sparkDevice})
   * @param noGpuWhy why {@code device} is empty, for the error message of {@code nccl}
   * @throws IllegalStateException {@code nccl} without the CUDA backend or without a GPU; the
   *     message says what to do
   * @throws IllegalArgumentException an unknown value
   */
  public static Choice choose(
      String requested, boolean cudaBackend, OptionalInt device, String noGpuWhy) {
    switch (requested == null ? "auto" : requested) {
      case "tcp" -> {
        return new Choice("tcp", -1, "ddp_backend=tcp");
      }
      case "nccl" -> {
        if (!cudaBackend) {
          throw new IllegalStateException(NO_CUDA_BUILD);
        }
        if (device.isEmpty()) {
          throw new IllegalStateException(
              "ddp_backend=nccl but this rank has no GPU: "
                  + noGpuWhy
                  + ". Give every rank one GPU, or set ddp_backend=tcp.");
        }
        return new Choice(
            "nccl", device.getAsInt(), "ddp_backend=nccl on GPU " + device.getAsInt());
      }
      case "auto" -> {
        if (cudaBackend && device.isPresent()) {
          return new Choice(
              "nccl",
              device.getAsInt(),
              "ddp_backend=auto: CUDA backend and GPU " + device.getAsInt() + " -> nccl");
        }
        return new Choice(
            "tcp",
            -1,
            "ddp_backend=auto -> tcp ("
                + (cudaBackend ? "CUDA backend but " + noGpuWhy : "ND4J CPU backend")
                + ")");
      }
      default ->
          throw new IllegalArgumentException(
              "ddp_backend must be one of " + VALUES + ", got '" + requested + "'");
    }
  }

  /**
   * The GPU of train-local worker {@code localRank}: CUDA device ordinal {@code localRank} among
   * the devices this process sees (CUDA numbers the devices {@code CUDA_VISIBLE_DEVICES} lists from
   * 0, so restricting that variable restricts the workers), as torchrun's {@code LOCAL_RANK}. Empty
   * when there are fewer visible devices than workers on this host: then no worker gets one, so
   * every worker chooses alike.
   *
   * @param visibleDevices the CUDA device count of this process (0 on the CPU backend)
   */
  public static OptionalInt localDevice(int localRank, int localWorld, int visibleDevices) {
    if (localRank < 0 || localRank >= localWorld) {
      throw new IllegalArgumentException(
          "local rank " + localRank + " is outside [0, " + localWorld + ")");
    }
    return localWorld <= visibleDevices ? OptionalInt.of(localRank) : OptionalInt.empty();
  }

  /** The reason {@link #localDevice} gives nothing, for messages. */
  public static String noLocalDeviceWhy(int localWorld, int visibleDevices, String cudaVisible) {
    return localWorld
        + " workers on this host but "
        + visibleDevices
        + " CUDA devices visible"
        + (cudaVisible == null ? "" : " (CUDA_VISIBLE_DEVICES=" + cudaVisible + ")")
        + "; run train-local with --nproc ≤ "
        + visibleDevices;
  }

  /**
   * The GPU Spark assigned to this barrier task ({@code TaskContext.resources().get("gpu")}): empty
   * without GPU scheduling, the ordinal when there is exactly one.
   *
   * @throws IllegalStateException more than one address (one rank drives one GPU), or an address
   *     that is not a CUDA device ordinal
   */
  public static OptionalInt sparkDevice(List<String> gpuAddresses) {
    if (gpuAddresses.isEmpty()) {
      return OptionalInt.empty();
    }
    if (gpuAddresses.size() > 1) {
      throw new IllegalStateException(
          "Spark assigned "
              + gpuAddresses.size()
              + " GPUs "
              + gpuAddresses
              + " to one training task, but a rank drives exactly one GPU: set"
              + " spark.task.resource.gpu.amount=1 (world size = executors × GPUs per executor)");
    }
    String a = gpuAddresses.get(0).trim();
    try {
      int d = Integer.parseInt(a);
      if (d >= 0) {
        return OptionalInt.of(d);
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new IllegalStateException(
        "Spark assigned GPU address '"
            + a
            + "', which is not a CUDA device ordinal (0, 1, …): the GPU discovery script"
            + " (spark.executor.resource.gpu.discoveryScript, e.g. conf/gpu-discovery.sh) must"
            + " report nvidia-smi indices as this executor's CUDA sees them");
  }

  /** The reason {@link #sparkDevice} gives nothing, for messages. */
  public static String noSparkDeviceWhy() {
    return "Spark assigned no GPU to this task (set spark.executor.resource.gpu.amount,"
        + " spark.task.resource.gpu.amount=1 and a discovery script)";
  }
}
