package dev.danlu.train.comm;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Ranks as threads of one JVM, for tests: each collective publishes every rank's buffer in a shared
 * slot, meets at a barrier, and reads the others directly. Reductions add in rank order 0, 1, ...,
 * N-1, so results are deterministic. A rank that does not arrive within the timeout fails the
 * collective on every waiting rank.
 */
public final class LocalCommunicator implements Communicator {

  private static final class Group {
    final int size;
    final CyclicBarrier barrier;
    final Object[] slots;
    final long timeoutMillis;

    Group(int size, long timeoutMillis) {
      this.size = size;
      this.barrier = new CyclicBarrier(size);
      this.slots = new Object[size];
      this.timeoutMillis = timeoutMillis;
    }
  }

  private final Group group;
  private final int rank;

  private LocalCommunicator(Group group, int rank) {
    this.group = group;
    this.rank = rank;
  }

  /** {@code worldSize} communicators sharing one group; hand element i to the thread of rank i. */
  public static List<LocalCommunicator> group(int worldSize, long timeoutMillis) {
    if (worldSize < 1) {
      throw new IllegalArgumentException("worldSize must be >= 1, got " + worldSize);
    }
    Group g = new Group(worldSize, timeoutMillis);
    List<LocalCommunicator> out = new ArrayList<>();
    for (int r = 0; r < worldSize; r++) {
      out.add(new LocalCommunicator(g, r));
    }
    return out;
  }

  public static List<LocalCommunicator> group(int worldSize) {
    return group(worldSize, 60_000);
  }

  @Override
  public int rank() {
    return rank;
  }

  @Override
  public int worldSize() {
    return group.size;
  }

  @Override
  public String kind() {
    return "local";
  }

  private void await() {
    try {
      group.barrier.await(group.timeoutMillis, TimeUnit.MILLISECONDS);
    } catch (TimeoutException | BrokenBarrierException e) {
      throw new CommException(
          "local rank "
              + rank
              + ": not every rank reached the collective within "
              + group.timeoutMillis
              + " ms (a rank died or called a different collective)",
          e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CommException("local rank " + rank + " interrupted in a collective", e);
    }
  }

  private float[] slot(int r) {
    return (float[]) group.slots[r];
  }

  /** Publish, meet, run {@code body} while everyone's buffers are stable, meet again. */
  private void exchange(Object mine, Runnable body) {
    group.slots[rank] = mine;
    await();
    body.run();
    await();
  }

  @Override
  public void allReduce(float[] buf, int offset, int count, ReduceOp op) {
    if (group.size == 1) {
      return; // nothing to combine; keeps single-rank runs free of copies
    }
    float[] result = new float[count];
    exchange(
        buf,
        () -> {
          for (int i = 0; i < count; i++) {
            float acc = slot(0)[offset + i];
            for (int r = 1; r < group.size; r++) {
              acc = op.apply(acc, slot(r)[offset + i]);
            }
            result[i] = acc;
          }
        });
    // Safe: exchange's second meeting guarantees every rank has finished reading our buffer.
    System.arraycopy(result, 0, buf, offset, count);
  }

  @Override
  public void reduceScatter(float[] buf, int offset, int chunk, int stride) {
    if (group.size == 1) {
      return; // nothing to combine; keeps single-rank runs free of copies
    }
    reduceOwnChunk(buf, offset + rank * stride, chunk);
  }

  @Override
  public void reduceScatterV(float[] buf, int[] offsets, int[] counts) {
    FloatSlices.checkV(group.size, offsets, counts, buf.length);
    if (group.size == 1) {
      return;
    }
    reduceOwnChunk(buf, offsets[rank], counts[rank]);
  }

  /** Sums {@code buf[start, start+count)} over ranks in rank order (count may differ per rank). */
  private void reduceOwnChunk(float[] buf, int start, int count) {
    float[] result = new float[count];
    exchange(
        buf,
        () -> {
          for (int i = 0; i < count; i++) {
            float acc = slot(0)[start + i];
            for (int r = 1; r < group.size; r++) {
              acc += slot(r)[start + i];
            }
            result[i] = acc;
          }
        });
    System.arraycopy(result, 0, buf, start, count);
  }

  @Override
  public void allGather(float[] buf, int offset, int chunk, int stride) {
    if (group.size == 1) {
      return; // nothing to combine; keeps single-rank runs free of copies
    }
    exchange(
        buf,
        () -> {
          for (int r = 0; r < group.size; r++) {
            if (r != rank) {
              int start = offset + r * stride;
              System.arraycopy(slot(r), start, buf, start, chunk);
            }
          }
        });
  }

  @Override
  public void broadcast(float[] buf, int offset, int count, int root) {
    if (group.size == 1) {
      return; // nothing to combine; keeps single-rank runs free of copies
    }
    exchange(
        buf,
        () -> {
          if (rank != root) {
            System.arraycopy(slot(root), offset, buf, offset, count);
          }
        });
  }

  @Override
  public void barrier() {
    await();
  }

  @Override
  public byte[][] allGatherBytes(byte[] mine) {
    byte[][] out = new byte[group.size][];
    exchange(
        mine.clone(),
        () -> {
          for (int r = 0; r < group.size; r++) {
            out[r] = ((byte[]) group.slots[r]).clone();
          }
        });
    return out;
  }

  @Override
  public void close() {}
}
