package dev.danlu.train.comm;

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
 * Collectives over NCCL (org.bytedeco:cuda's {@code global.nccl}), one rank per GPU, chosen by
 * {@code ddp_backend} ({@link DdpBackend}). Rank 0 makes the NCCL unique id; it reaches the other
 * ranks through the {@link Rendezvous} each launch path already has (train-local's {@link
 * MasterRendezvous}, the Spark launcher's listener rendezvous), see {@link NcclIdExchange}. Every
 * NCCL and CUDA call is checked and fails with its error string.
 *
 * <p>The {@link DeviceCollectives} methods are the zero-copy path (device pointers). The trainer
 * does not use them yet: the ZeRO-2 optimizer's gradients, master weights and Adam moments are host
 * {@code float[]}s (and the model's fused kernels read host memory, see {@code tensor.Backend}), so
 * it calls the {@code float[]} methods, which stage through one device buffer kept across calls.
 * Per optimizer step, with P the padded trainable-parameter count and N ranks:
 *
 * <ul>
 *   <li>reduce-scatter of the gradients (per bucket): the N strided chunks are packed on the host,
 *       P floats copied host→device, P/N (this rank's reduced chunk) device→host;
 *   <li>all-gather of the updated parameters: this rank's P/N floats host→device, P floats
 *       device→host;
 *   <li>overflow flag, gradient norm and loss: a few floats each way.
 * </ul>
 *
 * <p>So NCCL moves the data between GPUs, but each step also crosses PCIe about 2P floats per rank,
 * synchronously (every {@code float[]} call waits for its stream). Keeping the flat buffers in
 * device memory and calling {@link DeviceCollectives} would remove those copies.
 *
 * <p>Nothing here touches CUDA until {@link #create} runs; the classes compile against the Java
 * part of org.bytedeco:cuda, and the natives (the {@code cuda-platform-redist} jars or a system
 * CUDA 11.6 + NCCL) are needed only on GPU hosts. Without them {@link #requireNative} fails with a
 * message, not an UnsatisfiedLinkError.
 */
public final class NcclCommunicator implements Communicator, DeviceCollectives {

  private final int rank;
  private final int world;
  private final int device;
  private final ncclComm comm;
  private final CUstream_st stream;
  private Pointer staging; // device scratch for the float[] / byte[] paths
  private long stagingBytes;

  private NcclCommunicator(int rank, int world, int device, ncclComm comm, CUstream_st stream) {
    this.rank = rank;
    this.world = world;
    this.device = device;
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
          "ddp_backend=nccl needs CUDA 11.6 and NCCL on this host, but their native libraries could not be"
              + " loaded ("
              + e
              + "). On GPU hosts add org.bytedeco:cuda-platform-redist:11.6-8.3-1.5.7"
              + " to the classpath or install CUDA 11.6 with NCCL; on CPU hosts use ddp_backend=tcp.",
          e);
    }
    int[] count = new int[1];
    int err = cudart.cudaGetDeviceCount(count);
    if (err != cudart.cudaSuccess || count[0] == 0) {
      throw new CommException(
          "ddp_backend=nccl but no CUDA device is visible ("
              + cudart.cudaGetErrorString(err).getString()
              + "); check CUDA_VISIBLE_DEVICES and the driver, or use ddp_backend=tcp");
    }
  }

  /** Joins the NCCL communicator of {@code world} ranks on GPU {@code device} of this host. */
  public static NcclCommunicator create(int rank, int world, int device, Rendezvous rendezvous) {
    return create(rank, world, localHostName(), device, rendezvous);
  }

  /**
   * The GPU's PCI bus id ("0000:3b:00.0"): unlike the device number it names the same GPU in every
   * container of a host, so two ranks sharing one are caught even when each sees it as device 0.
   */
  private static String gpuIdentity(int device) {
    byte[] b = new byte[64];
    if (cudart.cudaDeviceGetPCIBusId(b, b.length, device) == cudart.cudaSuccess) {
      int n = 0;
      while (n < b.length && b[n] != 0) {
        n++;
      }
      String id = new String(b, 0, n, java.nio.charset.StandardCharsets.US_ASCII).trim();
      if (!id.isEmpty() && !id.contains(" ")) {
        return id;
      }
    }
    return "cuda:" + device;
  }

  /**
   * Joins the NCCL communicator of {@code world} ranks on GPU {@code device}; {@code host} names
   * this rank's machine in the id exchange ({@link NcclIdExchange}), which is what lets two ranks
   * on one GPU fail with a clear message.
   */
  public static NcclCommunicator create(
      int rank, int world, String host, int device, Rendezvous rendezvous) {
    requireNative();
    check(cudart.cudaSetDevice(device), "cudaSetDevice(" + device + ")");
    byte[] idBytes =
        NcclIdExchange.exchange(
            rank,
            world,
            host,
            gpuIdentity(device),
            rendezvous,
            () -> {
              ncclUniqueId made = new ncclUniqueId();
              checkNccl(nccl.ncclGetUniqueId(made), "ncclGetUniqueId");
              byte[] b = new byte[nccl.NCCL_UNIQUE_ID_BYTES];
              made.internal().get(b);
              return b;
            });
    ncclUniqueId id = new ncclUniqueId();
    id.internal().put(idBytes);
    CUstream_st stream = new CUstream_st();
    check(cudart.cudaStreamCreate(stream), "cudaStreamCreate");
    ncclComm comm = new ncclComm();
    checkNccl(
        nccl.ncclCommInitRank(comm, world, id, rank),
        "ncclCommInitRank(rank " + rank + " of " + world + ")");
    return new NcclCommunicator(rank, world, device, comm, stream);
  }

  private static String localHostName() {
    try {
      return java.net.InetAddress.getLocalHost().getHostName();
    } catch (java.io.IOException e) {
      return "localhost";
    }
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
    onDevice();
    checkNccl(
        nccl.ncclAllReduce(ptr(send), ptr(recv), count, nccl.ncclFloat32, ncclOp(op), comm, stream),
        "ncclAllReduce");
  }

  @Override
  public void reduceScatterDevice(long send, long recv, long recvCount) {
    onDevice();
    checkNccl(
        nccl.ncclReduceScatter(
            ptr(send), ptr(recv), recvCount, nccl.ncclFloat32, nccl.ncclSum, comm, stream),
        "ncclReduceScatter");
  }

  @Override
  public void allGatherDevice(long send, long recv, long sendCount) {
    onDevice();
    checkNccl(
        nccl.ncclAllGather(ptr(send), ptr(recv), sendCount, nccl.ncclFloat32, comm, stream),
        "ncclAllGather");
  }

  @Override
  public void broadcastDevice(long send, long recv, long count, int root) {
    onDevice();
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
    if (counts[rank] > 0) {
      unstage(buf, offsets[rank], counts[rank], d + 4L * at[rank]);
    } else {
      synchronize(); // owns nothing here, but the staging buffer is reused by the next call
    }
  }

  @Override
  public void allGather(float[] buf, int offset, int chunk, int stride) {
    // Only this rank's chunk goes to the device (at its place in the packed layout); the gathered
    // whole comes back and is unpacked into the strided chunks.
    long d = stage(buf, offset + rank * stride, chunk, rank * chunk, chunk * world);
    allGatherDevice(d + 4L * rank * chunk, d, chunk);
    float[] packed = new float[chunk * world];
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

  /** Copies {@code src[off, off+count)} to the device scratch; returns the scratch's address. */
  private long stage(float[] src, int off, int count) {
    return stage(src, off, count, 0, count);
  }

  /**
   * Copies {@code src[off, off+count)} to float {@code at} of the device scratch, grown to hold
   * {@code total} floats; returns the scratch's address.
   */
  private long stage(float[] src, int off, int count, int at, int total) {
    onDevice();
    long need = 4L * Math.max(1, total);
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
          cudart.cudaMemcpy(
              ptr(staging.address() + 4L * at), host, 4L * count, cudart.cudaMemcpyHostToDevice),
          "cudaMemcpy to device");
    }
    return staging.address();
  }

  /** Waits for the stream, then copies {@code count} floats at device address {@code dev} back. */
  private void unstage(float[] dst, int off, int count, long dev) {
    onDevice();
    synchronize();
    try (FloatPointer host = new FloatPointer(count)) {
      check(
          cudart.cudaMemcpy(host, ptr(dev), 4L * count, cudart.cudaMemcpyDeviceToHost),
          "cudaMemcpy to host");
      host.get(dst, off, count);
    }
  }

  /**
   * Makes this rank's GPU current on the calling thread: CUDA's current device is per thread, and
   * the communicator may be called from threads other than the one that created it (a Spark task
   * thread, a test's pool), which would otherwise copy through device 0's context.
   */
  private void onDevice() {
    check(cudart.cudaSetDevice(device), "cudaSetDevice(" + device + ")");
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
    onDevice();
    if (staging != null) {
      cudart.cudaFree(staging);
      staging = null;
    }
    nccl.ncclCommDestroy(comm);
    cudart.cudaStreamDestroy(stream);
  }
}
