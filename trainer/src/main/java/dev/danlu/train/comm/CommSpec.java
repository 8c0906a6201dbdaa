package dev.danlu.train.comm;

/**
 * What {@link Communicators#create} needs to build a backend; fields a backend does not use are
 * ignored (the secret and bind host are TCP's, the device NCCL's).
 *
 * @param kind "tcp", "nccl" or "local" (world size 1 only; tests build local groups directly)
 * @param bindHost an address of this host the other ranks can reach (TCP ring); NCCL uses it to
 *     name this rank's host in the id exchange (null: the local host name)
 * @param secret the per-job secret authenticating ring peers (TCP ring)
 * @param cudaDevice the CUDA device ordinal this rank drives (NCCL; {@link DdpBackend.Choice})
 */
public record CommSpec(
    String kind,
    int rank,
    int worldSize,
    String bindHost,
    byte[] secret,
    int cudaDevice,
    TcpRingOptions tcp) {}
