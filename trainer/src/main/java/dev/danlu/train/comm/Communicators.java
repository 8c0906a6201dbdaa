package dev.danlu.train.comm;

/**
 * Builds the collective backend a {@link CommSpec} names ({@link DdpBackend} decides which, from
 * the {@code ddp_backend} key). Only {@code nccl} touches CUDA, and only when chosen, so the CPU
 * build and tests never load CUDA natives.
 */
public final class Communicators {
  private Communicators() {}

  public static Communicator create(CommSpec spec, Rendezvous rendezvous) {
    return switch (spec.kind()) {
      case "tcp" ->
          TcpRingCommunicator.create(
              spec.rank(), spec.bindHost(), spec.secret(), rendezvous, spec.tcp());
      case "nccl" ->
          spec.bindHost() == null
              ? NcclCommunicator.create(
                  spec.rank(), spec.worldSize(), spec.cudaDevice(), rendezvous)
              : NcclCommunicator.create(
                  spec.rank(), spec.worldSize(), spec.bindHost(), spec.cudaDevice(), rendezvous);
      case "local" -> {
        if (spec.worldSize() != 1) {
          throw new IllegalArgumentException(
              "CommSpec kind local runs ranks as threads of one JVM and is only for tests (or world size 1);"
                  + " use tcp for "
                  + spec.worldSize()
                  + " processes");
        }
        yield LocalCommunicator.group(1).get(0);
      }
      default ->
          throw new IllegalArgumentException(
              "unknown communicator '"
                  + spec.kind()
                  + "': use tcp (CPU processes), nccl (GPUs) or local");
    };
  }
}
