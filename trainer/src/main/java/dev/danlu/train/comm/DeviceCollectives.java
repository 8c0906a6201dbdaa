package dev.danlu.train.comm;

/**
 * Zero-copy collectives on GPU memory, offered by backends that can read device buffers (NCCL).
 * Addresses are raw CUDA device pointers to fp32 data; the trainer obtains them from ND4J CUDA
 * arrays via {@code array.data().opaqueBuffer()}-backed {@code AtomicAllocator.getInstance()
 * .getPointer(array.data(), context).address()} (ND4J's CUDA backend) after synchronizing ND4J's
 * stream, so the collective sees finished gradients. Calls are asynchronous on the backend's
 * stream; {@link #synchronize()} waits for them.
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
