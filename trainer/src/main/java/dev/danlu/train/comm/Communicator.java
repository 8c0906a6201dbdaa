package dev.danlu.train.comm;

import java.nio.ByteBuffer;

/**
 * The collectives the trainer needs, one interface for every backend (in-process threads, TCP ring,
 * NCCL); the trainer receives one and never knows which.
 *
 * <p>Buffers are {@code float[]} with offset and count: the optimizer and the CPU model keep their
 * flat parameters and gradients in Java arrays. A socket can only write from and read into native
 * memory, so the TCP ring copies every slice of an array through a direct buffer. Data that already
 * lives in a direct {@link ByteBuffer} (an ND4J buffer's {@code asNio()}, or a staging buffer the
 * caller keeps) can use the {@code ByteBuffer} overloads instead, which the TCP ring sends from and
 * gathers into in place; other backends run them through a temporary array. The zero-copy path for
 * GPU memory is {@link DeviceCollectives}, implemented by the NCCL backend on raw device pointers.
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
   * Reduce-scatter with a chunk of its own size per rank ("reduce-scatter-v"): in place, chunk
   * {@code i} is {@code buf[offsets[i], offsets[i] + counts[i])}, chunks do not overlap, and any
   * count may be 0. Afterwards this rank's chunk holds the sum of every rank's chunk {@code
   * rank()}; the other chunks hold unspecified partial sums. Every rank passes the same offsets and
   * counts.
   *
   * <p>What ZeRO needs to reduce a contiguous region of the flat gradient buffer as soon as
   * backward has finished it: the region cuts the equal partitions unevenly. A rank sends at most
   * the other ranks' chunks once, so regions tiling the buffer cost exactly the bytes of one
   * reduce-scatter of it. Each element's sum is formed in the same order as {@link #reduceScatter}
   * forms it for the same owning rank (the order depends on the owner and the world size, never on
   * how the buffer is cut), so both give bit-identical results — on the in-process and TCP
   * backends; NCCL implements it as grouped {@code ncclReduce} calls whose algorithm NCCL picks by
   * size, so there the two agree to rounding.
   */
  void reduceScatterV(float[] buf, int[] offsets, int[] counts);

  /** {@link #reduceScatterV(float[], int[], int[])} on the floats of {@code buf}. */
  default void reduceScatterV(ByteBuffer buf, int[] offsets, int[] counts) {
    FloatSlices.checkV(worldSize(), offsets, counts, buf.capacity() / 4);
    int lo = FloatSlices.vStart(offsets, counts);
    int hi = FloatSlices.vEnd(offsets, counts);
    int[] shifted = new int[offsets.length];
    for (int i = 0; i < offsets.length; i++) {
      shifted[i] = counts[i] == 0 ? 0 : offsets[i] - lo;
    }
    FloatSlices.viaArray(buf, lo, hi - lo, a -> reduceScatterV(a, shifted, counts));
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

  // Zero-copy variants. buf holds little-endian floats; offset, count, chunk and stride count
  // floats from index 0 of buf, ignoring its position and limit (as the float[] methods index
  // arrays). A direct buffer saves the TCP ring the copies between the array and its socket
  // buffers; a heap buffer works too, through a temporary array.

  /** {@link #allReduce(float[], int, int, ReduceOp)} on the floats of {@code buf}. */
  default void allReduce(ByteBuffer buf, int offset, int count, ReduceOp op) {
    FloatSlices.viaArray(buf, offset, count, a -> allReduce(a, 0, count, op));
  }

  /** {@link #reduceScatter(float[], int, int, int)} on the floats of {@code buf}. */
  default void reduceScatter(ByteBuffer buf, int offset, int chunk, int stride) {
    FloatSlices.viaArray(
        buf,
        offset,
        FloatSlices.span(worldSize(), chunk, stride),
        a -> reduceScatter(a, 0, chunk, stride));
  }

  /** {@link #allGather(float[], int, int, int)} on the floats of {@code buf}. */
  default void allGather(ByteBuffer buf, int offset, int chunk, int stride) {
    FloatSlices.viaArray(
        buf,
        offset,
        FloatSlices.span(worldSize(), chunk, stride),
        a -> allGather(a, 0, chunk, stride));
  }

  /** {@link #broadcast(float[], int, int, int)} on the floats of {@code buf}. */
  default void broadcast(ByteBuffer buf, int offset, int count, int root) {
    FloatSlices.viaArray(buf, offset, count, a -> broadcast(a, 0, count, root));
  }

  /** Returns when every rank has entered the barrier. */
  void barrier();

  /** Small control messages (config hashes, step numbers, NCCL ids): element i is rank i's. */
  byte[][] allGatherBytes(byte[] mine);

  /** Returns {@code root}'s bytes on every rank; {@code data} is ignored on the other ranks. */
  default byte[] broadcastBytes(byte[] data, int root) {
    return allGatherBytes(rank() == root ? data : new byte[0])[root];
  }

  /**
   * Whether the {@code ByteBuffer} collectives on a direct buffer are cheaper than the {@code
   * float[]} ones (the TCP ring sends from and gathers into it in place), so callers that can keep
   * their data in native memory should; other backends copy it through an array.
   */
  default boolean zeroCopyBuffers() {
    return false;
  }

  /** Which backend this is, for logs ("local", "tcp", "nccl"). */
  String kind();

  @Override
  void close();
}
