package dev.danlu.launch;

import java.net.ServerSocket;
import java.util.List;

/**
 * Everything one rank is told by the launcher: like torchrun's RANK / WORLD_SIZE / MASTER_ADDR,
 * plus what Spark's barrier rendezvous gathered.
 *
 * @param rank this task's rank, 0 ≤ rank < worldSize (the barrier partition id)
 * @param worldSize number of ranks (one barrier task each)
 * @param attempt launcher attempt number, 1 for the first run of the stage (the number the console,
 *     the Training tab, the job description and the metrics show); a retried stage has attempt ≥ 2
 *     and must resume from the newest committed checkpoint
 * @param peerAddresses {@code host:port} of every rank's {@link #listener}, index = rank, gathered
 *     by {@code BarrierTaskContext.allGather}
 * @param jobSecret per-job random secret (32 bytes) made on the driver; peers authenticate
 *     connections with it (e.g. an HMAC of a challenge) so a stranger on the port is rejected
 * @param gpuAddresses the GPU addresses Spark assigned to this task (from {@code
 *     BarrierTaskContext.resources().get("gpu")}), empty without GPU scheduling
 * @param configYaml the training config file's text as read on the driver
 * @param configSource where the YAML came from (its path on the driver), for messages
 * @param overrides {@code key=value} overrides from the command line, applied after the YAML
 * @param progress where to report progress; reaches the driver's console, UI tab and metrics
 * @param listener a server socket already bound on this executor's host at an ephemeral port (so
 *     two executors on one host never clash); its address is {@code peerAddresses.get(rank)}. The
 *     RankWork owns it from now on and must close it.
 */
public record RankContext(
    int rank,
    int worldSize,
    int attempt,
    List<String> peerAddresses,
    byte[] jobSecret,
    List<String> gpuAddresses,
    String configYaml,
    String configSource,
    List<String> overrides,
    ProgressReporter progress,
    ServerSocket listener) {

  public RankContext {
    peerAddresses = List.copyOf(peerAddresses);
    gpuAddresses = List.copyOf(gpuAddresses);
    overrides = List.copyOf(overrides);
    jobSecret = jobSecret.clone();
    if (rank < 0 || rank >= worldSize || peerAddresses.size() != worldSize) {
      throw new IllegalArgumentException(
          "rank " + rank + " of " + worldSize + " with " + peerAddresses.size() + " peers");
    }
  }

  /** The prefix for this rank's log lines, e.g. {@code [rank 1/4 attempt 1]}. */
  public String logPrefix() {
    return "[rank " + rank + "/" + worldSize + " attempt " + attempt + "]";
  }

  @Override
  public byte[] jobSecret() {
    return jobSecret.clone();
  }

  @Override
  public String toString() {
    // Never print the secret.
    return "RankContext" + logPrefix() + " peers=" + peerAddresses + " gpus=" + gpuAddresses;
  }
}
