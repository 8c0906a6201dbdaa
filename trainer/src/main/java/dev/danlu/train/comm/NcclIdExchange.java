package dev.danlu.train.comm;

import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Hands NCCL's unique id from rank 0 to every rank over a {@link Rendezvous} (train-local's {@link
 * MasterRendezvous}, the Spark launcher's listener rendezvous), before {@code ncclCommInitRank}.
 * Kept apart from {@link NcclCommunicator} and free of CUDA calls so the exchange runs, and is
 * tested, between real ranks on hosts without a GPU: the caller supplies the id.
 *
 * <p>Every rank sends {@code nccl <host> <gpu> <id hex | ->}; rank 0 sends the id. {@code gpu} is
 * the GPU's PCI bus id where CUDA gives one (two executors that each see "their" GPU as device 0
 * still differ there), else {@code cuda:<device>}. Since every rank gets the whole list, every rank
 * also checks it and fails alike: a rank that chose another backend, a malformed id, or two ranks
 * driving the same GPU of one host (NCCL would only say "Duplicate GPU detected" at init, on some
 * ranks).
 */
public final class NcclIdExchange {
  /** {@code NCCL_UNIQUE_ID_BYTES} of nccl.h (an opaque 128-byte struct). */
  public static final int ID_BYTES = 128;

  private static final String TAG = "nccl";

  private NcclIdExchange() {}

  /**
   * Runs the exchange (collective: every rank calls it once, in the same place).
   *
   * @param host this rank's host name, to find two ranks on one GPU
   * @param gpu this rank's GPU on that host: PCI bus id, or {@code cuda:<device>}; no spaces
   * @param makeId called on rank 0 only: the {@link #ID_BYTES}-byte id ({@code ncclGetUniqueId})
   * @return the id every rank passes to {@code ncclCommInitRank}
   */
  public static byte[] exchange(
      int rank,
      int world,
      String host,
      String gpu,
      Rendezvous rendezvous,
      Supplier<byte[]> makeId) {
    String id = "-";
    if (rank == 0) {
      byte[] b = makeId.get();
      if (b.length != ID_BYTES) {
        throw new CommException("NCCL unique id has " + b.length + " bytes, expected " + ID_BYTES);
      }
      id = HexFormat.of().formatHex(b);
    }
    if (gpu.isEmpty() || gpu.contains(" ")) {
      throw new IllegalArgumentException("GPU identity '" + gpu + "' must be one word");
    }
    List<String> all = rendezvous.allGather(TAG + " " + host + " " + gpu + " " + id);
    if (all.size() != world) {
      throw new CommException(
          "NCCL id exchange: rendezvous returned "
              + all.size()
              + " entries for "
              + world
              + " ranks");
    }
    Map<String, Integer> gpuOwner = new HashMap<>();
    byte[] result = null;
    for (int r = 0; r < world; r++) {
      String[] f = all.get(r).split(" ");
      if (f.length != 4 || !f[0].equals(TAG)) {
        throw new CommException(
            "NCCL id exchange: rank "
                + r
                + " sent '"
                + abbreviate(all.get(r))
                + "', not an NCCL bootstrap entry: it chose another ddp_backend. Every rank must"
                + " use the same one (set ddp_backend=nccl or tcp explicitly)");
      }
      Integer other = gpuOwner.putIfAbsent(f[1] + " " + f[2], r);
      if (other != null) {
        throw new CommException(
            "NCCL id exchange: ranks "
                + other
                + " and "
                + r
                + " both drive GPU "
                + f[2]
                + " of host "
                + f[1]
                + "; NCCL needs one GPU per rank (train-local: --nproc ≤ visible GPUs; Spark:"
                + " spark.task.resource.gpu.amount=1)");
      }
      if (r == 0) {
        result = parseId(f[3]);
      }
    }
    return result;
  }

  private static byte[] parseId(String hex) {
    try {
      byte[] b = HexFormat.of().parseHex(hex);
      if (b.length == ID_BYTES) {
        return b;
      }
    } catch (IllegalArgumentException e) {
      // reported below
    }
    throw new CommException(
        "NCCL id exchange: rank 0 sent '"
            + abbreviate(hex)
            + "', not a "
            + ID_BYTES
            + "-byte id in hex");
  }

  private static String abbreviate(String s) {
    return s.length() <= 80 ? s : s.substring(0, 77) + "...";
  }
}
