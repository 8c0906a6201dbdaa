package dev.danlu.train.comm;

import java.util.HexFormat;
import java.util.List;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.cuda.global.nccl;
import org.bytedeco.cuda.nccl.ncclComm;
import org.bytedeco.cuda.nccl.ncclUniqueId;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;

/**
 * Collectives over NCCL (org.bytedeco:cuda's {@code global.nccl}), one rank per GPU. Rank 0 makes
 * the NCCL unique id; it reaches the other ranks as hex through the same {@link Rendezvous} the TCP
 * ring uses (Spark's barrier allGather). Every NCCL and CUDA call is checked and fails with its
 * error string.
 *
 * <p>The {@link DeviceCollectives} methods are the fast path (device pointers, no copies). The
 * {@code float[]} methods of {@link Communicator} work too, staging through a device buffer, for
 * small control values (grad norm, overflow flag) and for code that is not GPU-aware.
 *
 * <p>Nothing here touches CUDA until {@link #create} runs; the classes compile against the Java
 * part of org.bytedeco:cuda, and the natives (the {@code cuda-platform-redist} jars or a system
 * CUDA 11.6 + NCCL) are needed only on GPU hosts.
 */
public final class NcclCommunicator implements Communicator, DeviceCollectives {

  private final int rank;
  private final int world;
  private final ncclComm comm;
  private final CUstream_st stream;
  private Pointer staging; // device scratch for the float[] / byte[] paths
  private long stagingBytes;

  private NcclCommunicator(int rank, int world, ncclComm comm, CUstream_st stream) {
    this.rank = rank;
    this.world = world;
    this.comm = comm;
    this.stream = stream;
  }

  /**
   * Loads the CUDA/NCCL natives or explains why they are missing. Separate so a CPU host asking for
   * NCCL gets this message, not an UnsatisfiedLinkError from a static initializer.
   */
  static void requireNative() {
    try {
      Loader.load(cudart.class);
      Loader.load(nccl.class);
    } catch (
        Throwable e) { // UnsatisfiedLinkError, NoClassDefFoundError, ExceptionInInitializerError
      throw new CommException(
          "comm=nccl needs CUDA 11.6 and NCCL on this host, but their native libraries could not be"
              + " loaded ("
              + e
              + "). On GPU hosts add org.bytedeco:cuda-platform-redist:11.6-8.3-1.5.7"
              + " to the classpath or install CUDA 11.6 with NCCL; on CPU hosts use comm=tcp.",
          e);
    }
    int[] count = new int[1];
    int err = cudart.cudaGetDeviceCount(count);
    if (err != cudart.cudaSuccess || count[0] == 0) {
      throw new CommException(
          "comm=nccl but no CUDA device is visible ("
              + cudart.cudaGetErrorString(err).getString()
              + "); check CUDA_VISIBLE_DEVICES and the driver, or use comm=tcp");
    }
  }

  /** Joins the NCCL communicator of {@code world} ranks on GPU {@code device} of this host. */
  public static NcclCommunicator create(int rank, int world, int device, Rendezvous rendezvous) {
    requireNative();
    check(cudart.cudaSetDevice(device), "cudaSetDevice(" + device + ")");
    ncclUniqueId id = new ncclUniqueId();
    String mine = "";
    if (rank == 0) {
      checkNccl(nccl.ncclGetUniqueId(id), "ncclGetUniqueId");
      byte[] b = new byte[nccl.NCCL_UNIQUE_ID_BYTES];
      id.internal().get(b);
      mine = HexFormat.of().formatHex(b);
    }
    List<String> all = rendezvous.allGather(mine);
    if (rank != 0) {
      id.internal().put(HexFormat.of().parseHex(all.get(0)));
    }
    CUstream_st stream = new CUstream_st();
    check(cudart.cudaStreamCreate(stream), "cudaStreamCreate");
    ncclComm comm = new ncclComm();
    checkNccl(
        nccl.ncclCommInitRank(comm, world, id, rank),
        "ncclCommInitRank(rank " + rank + " of " + world + ")");
    return new NcclCommunicator(rank, world, comm, stream);
  }

  @Override
  public int rank() {
    return rank;
  }

  @Override
  public int worldSize() {
    return world;
  }

  @Override
  public String kind() {
    return "nccl";
  }

  // ---- device pointers (zero copy) -----------------------------------------------------------

  @Override
  public void allReduceDevice(long send, long recv, long count, ReduceOp op) {
    checkNccl(
        nccl.ncclAllReduce(ptr(send), ptr(recv), count, nccl.ncclFloat32, ncclOp(op), comm, stream),
        "ncclAllReduce");
  }

  @Override
  public void reduceScatterDevice(long send, long recv, long recvCount) {
    checkNccl(
        nccl.ncclReduceScatter(
            ptr(send), ptr(recv), recvCount, nccl.ncclFloat32, nccl.ncclSum, comm, stream),
        "ncclReduceScatter");
  }

  @Override
  public void allGatherDevice(long send, long recv, long sendCount) {
    checkNccl(
        nccl.ncclAllGather(ptr(send), ptr(recv), sendCount, nccl.ncclFloat32, comm, stream),
        "ncclAllGather");
  }

  @Override
  public void broadcastDevice(long send, long recv, long count, int root) {
    checkNccl(
        nccl.ncclBroadcast(ptr(send), ptr(recv), count, nccl.ncclFloat32, root, comm, stream),
        "ncclBroadcast");
  }

  @Override
  public void synchronize() {
    check(
        cudart.cudaStreamSynchronize(stream),
        "cudaStreamSynchronize (a collective failed or a peer hung)");
  }

  // ---- host arrays, staged through device memory ---------------------------------------------

  @Override
  public void allReduce(float[] buf, int offset, int count, ReduceOp op) {
    long d = stage(buf, offset, count);
    allReduceDevice(d, d, count, op);
    unstage(buf, offset, count, d);
  }

  @Override
  public void reduceScatter(float[] buf, int offset, int chunk, int stride) {
    // NCCL wants contiguous chunks: pack the strided chunks, reduce-scatter, unpack this rank's.
    float[] packed = new float[chunk * world];
    for (int i = 0; i < world; i++) {
      System.arraycopy(buf, offset + i * stride, packed, i * chunk, chunk);
    }
    long d = stage(packed, 0, packed.length);
    reduceScatterDevice(d, d + 4L * rank * chunk, chunk);
    unstage(buf, offset + rank * stride, chunk, d + 4L * rank * chunk);
  }

  /**
   * One grouped {@code ncclReduce} per owner (NCCL has no reduce-scatter-v): the chunks are packed
   * into the staging buffer, rank i's chunk is reduced onto rank i, and only this rank's own sum is
   * copied back. Grouping lets NCCL schedule the N reductions as one operation.
   */
  @Override
  public void reduceScatterV(float[] buf, int[] offsets, int[] counts) {
    FloatSlices.checkV(world, offsets, counts, buf.length);
    int total = 0;
    for (int c : counts) {
      total += c;
    }
    if (world == 1 || total == 0) {
      return;
    }
    float[] packed = new float[total];
    long[] at = new long[world];
    int pos = 0;
    for (int i = 0; i < world; i++) {
      System.arraycopy(buf, offsets[i], packed, pos, counts[i]);
      at[i] = pos;
      pos += counts[i];
    }
    long d = stage(packed, 0, total);
    checkNccl(nccl.ncclGroupStart(), "ncclGroupStart");
    for (int i = 0; i < world; i++) {
      if (counts[i] > 0) {
        Pointer p = ptr(d + 4L * at[i]);
        checkNccl(
            nccl.ncclReduce(p, p, counts[i], nccl.ncclFloat32, nccl.ncclSum, i, comm, stream),
            "ncclReduce(root " + i + ")");
      }
    }
    checkNccl(nccl.ncclGroupEnd(), "ncclGroupEnd");
    unstage(buf, offsets[rank], counts[rank], d + 4L * at[rank]);
  }

  @Override
  public void allGather(float[] buf, int offset, int chunk, int stride) {
    float[] packed = new float[chunk * world];
    System.arraycopy(buf, offset + rank * stride, packed, rank * chunk, chunk);
    long d = stage(packed, 0, packed.length);
    allGatherDevice(d + 4L * rank * chunk, d, chunk);
    unstage(packed, 0, packed.length, d);
    for (int i = 0; i < world; i++) {
      System.arraycopy(packed, i * chunk, buf, offset + i * stride, chunk);
    }
  }

  @Override
  public void broadcast(float[] buf, int offset, int count, int root) {
    long d = stage(buf, offset, count);
    broadcastDevice(d, d, count, root);
    unstage(buf, offset, count, d);
  }

  @Override
  public void barrier() {
    allReduce(new float[1], 0, 1, ReduceOp.SUM);
  }

  @Override
  public byte[][] allGatherBytes(byte[] mine) {
    float[] lens = new float[world];
    lens[rank] = mine.length;
    allGather(lens, 0, 1);
    int max = 0;
    for (float l : lens) {
      max = Math.max(max, (int) l);
    }
    int slot = (max + 3) / 4; // bytes travel packed in floats (bit patterns, never computed on)
    float[] packed = new float[slot * world];
    java.nio.ByteBuffer bb = java.nio.ByteBuffer.allocate(slot * 4).put(mine);
    bb.flip().limit(slot * 4);
    bb.asFloatBuffer().get(packed, rank * slot, slot);
    allGather(packed, 0, slot);
    byte[][] out = new byte[world][];
    for (int r = 0; r < world; r++) {
      java.nio.ByteBuffer o = java.nio.ByteBuffer.allocate(slot * 4);
      o.asFloatBuffer().put(packed, r * slot, slot);
      out[r] = java.util.Arrays.copyOf(o.array(), (int) lens[r]);
    }
    return out;
  }

  /**
   * Copies {@code src[off, off+count)} to the (grown as needed) device scratch; returns its
   * address.
   */
  private long stage(float[] src, int off, int count) {
    long need = 4L * Math.max(1, count);
    if (need > stagingBytes) {
      if (staging != null) {
        cudart.cudaFree(staging);
      }
      PointerPointer<Pointer> pp = new PointerPointer<>(1);
      check(cudart.cudaMalloc(pp, need), "cudaMalloc(" + need + " bytes)");
      staging = pp.get(0);
      stagingBytes = need;
    }
    try (FloatPointer host = new FloatPointer(count)) {
      host.put(src, off, count);
      check(
          cudart.cudaMemcpy(staging, host, 4L * count, cudart.cudaMemcpyHostToDevice),
          "cudaMemcpy to device");
    }
    return staging.address();
  }

  /** Waits for the stream, then copies {@code count} floats at device address {@code dev} back. */
  private void unstage(float[] dst, int off, int count, long dev) {
    synchronize();
    try (FloatPointer host = new FloatPointer(count)) {
      check(
          cudart.cudaMemcpy(host, ptr(dev), 4L * count, cudart.cudaMemcpyDeviceToHost),
          "cudaMemcpy to host");
      host.get(dst, off, count);
    }
  }

  private static Pointer ptr(long address) {
    return new Pointer() {
      {
        this.address = address;
      }
    };
  }

  private static int ncclOp(ReduceOp op) {
    return op == ReduceOp.SUM ? nccl.ncclSum : nccl.ncclMax;
  }

  private static void check(int err, String what) {
    if (err != cudart.cudaSuccess) {
      BytePointer msg = cudart.cudaGetErrorString(err);
      throw new CommException(what + " failed: CUDA error " + err + " (" + msg.getString() + ")");
    }
  }

  private static void checkNccl(int err, String what) {
    if (err != nccl.ncclSuccess) {
      throw new CommException(
          what
              + " failed: NCCL error "
              + err
              + " ("
              + nccl.ncclGetErrorString(err).getString()
              + "); set NCCL_DEBUG=INFO for details");
    }
  }

  @Override
  public void close() {
    if (staging != null) {
      cudart.cudaFree(staging);
      staging = null;
    }
    nccl.ncclCommDestroy(comm);
    cudart.cudaStreamDestroy(stream);
  }
}
