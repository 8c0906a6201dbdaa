package dev.danlu.train.comm;

/**
 * Zero-copy collectives on GPU memory, offered by backends that can read device buffers (NCCL).
 * Addresses are raw CUDA device pointers to fp32 data. With ND4J's CUDA backend (nd4j-cuda-11.6,
 * not a dependency of the CPU build) the trainer obtains them as {@code
 * AtomicAllocator.getInstance().getPointer(array, context).address()} with {@code context =
 * AtomicAllocator.getInstance().getDeviceContext()}, after {@code Nd4j.getExecutioner().commit()}
 * so the gradients are finished on ND4J's stream before NCCL reads them on its own stream; after
 * {@link #synchronize()} ND4J may read the results (mark the array's device buffer as the fresh
 * copy with {@code AtomicAllocator.getInstance().tickDeviceWrite(array)}). Calls are asynchronous
 * on the backend's stream.
 */
public interface DeviceCollectives {

  void allReduceDevice(long sendPtr, long recvPtr, long count, ReduceOp op);

  /** NCCL semantics: {@code recvPtr} receives {@code recvCount} floats, rank's slice of send. */
  void reduceScatterDevice(long sendPtr, long recvPtr, long recvCount);

  /** NCCL semantics: {@code recvPtr} holds {@code worldSize * sendCount} floats afterwards. */
  void allGatherDevice(long sendPtr, long recvPtr, long sendCount);

  void broadcastDevice(long sendPtr, long recvPtr, long count, int root);

  /** Waits until every collective queued on this backend's stream finished. */
  void synchronize();
}
