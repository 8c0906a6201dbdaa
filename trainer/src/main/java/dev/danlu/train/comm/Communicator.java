package dev.danlu.train.comm;

/**
 * The collectives the trainer needs, one interface for every backend (in-process threads, TCP ring,
 * NCCL); the trainer receives one and never knows which.
 *
 * <p>Buffers are {@code float[]} with offset and count rather than {@code FloatBuffer}s: the
 * optimizer and the CPU model keep their flat parameters and gradients in Java arrays, and the TCP
 * ring must copy through a direct socket buffer anyway, so a FloatBuffer would save nothing on CPU.
 * The zero-copy path for GPU memory is {@link DeviceCollectives}, implemented by the NCCL backend
 * on raw device pointers.
 *
 * <p>Determinism: every backend reduces in an order fixed by rank and topology, never by arrival
 * time, so a run with the same world size is bit-reproducible. Different world sizes add the same
 * numbers in a different order (a ring starts each chunk's sum at a different rank), so N ranks and
 * 1 rank agree only up to float rounding; equivalence tests use relative tolerances.
 *
 * <p>Every rank must call the same collectives in the same order with the same sizes (like MPI and
 * NCCL); a mismatch is reported where detectable and otherwise ends in a timeout naming the peer. A
 * communicator is used by one thread at a time, and after a {@link CommException} it is broken: the
 * job restarts from its last checkpoint.
 */
public interface Communicator extends AutoCloseable {

  int rank();

  int worldSize();

  /** In place: {@code buf[offset, offset+count)} becomes the element-wise reduction over ranks. */
  void allReduce(float[] buf, int offset, int count, ReduceOp op);

  /**
   * In place, strided: chunk {@code i} is {@code buf[offset + i*stride, + chunk)} for {@code i <
   * worldSize}. Afterwards this rank's chunk ({@code i == rank()}) holds the sum of every rank's
   * chunk {@code rank()}; the other chunks hold unspecified partial sums. {@code stride == chunk}
   * is the ordinary contiguous reduce-scatter; a larger stride lets ZeRO reduce a bucket that takes
   * the same slice from every rank's partition.
   */
  void reduceScatter(float[] buf, int offset, int chunk, int stride);

  /** Contiguous reduce-scatter of {@code worldSize * chunk} floats starting at {@code offset}. */
  default void reduceScatter(float[] buf, int offset, int chunk) {
    reduceScatter(buf, offset, chunk, chunk);
  }

  /**
   * In place, strided like {@link #reduceScatter}: afterwards every rank's chunk {@code i} equals
   * rank {@code i}'s chunk {@code i}.
   */
  void allGather(float[] buf, int offset, int chunk, int stride);

  default void allGather(float[] buf, int offset, int chunk) {
    allGather(buf, offset, chunk, chunk);
  }

  /** In place: every rank's {@code buf[offset, offset+count)} becomes {@code root}'s. */
  void broadcast(float[] buf, int offset, int count, int root);

  /** Returns when every rank has entered the barrier. */
  void barrier();

  /** Small control messages (config hashes, step numbers, NCCL ids): element i is rank i's. */
  byte[][] allGatherBytes(byte[] mine);

  /** Returns {@code root}'s bytes on every rank; {@code data} is ignored on the other ranks. */
  default byte[] broadcastBytes(byte[] data, int root) {
    return allGatherBytes(rank() == root ? data : new byte[0])[root];
  }

  /** Which backend this is, for logs ("local", "tcp", "nccl"). */
  String kind();

  @Override
  void close();
}
