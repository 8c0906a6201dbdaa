package dev.danlu.train.comm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.List;

/**
 * The {@code ByteBuffer} collectives checked like {@link CollectiveContract} checks the array ones:
 * against a double-precision reference, with margins around the data that must not change, and
 * additionally bit-for-bit against the {@code float[]} collective of the same backend (both must
 * add in the same order). Buffers get a position, a limit and a big-endian order flag that the
 * collectives must ignore and leave as they were.
 */
final class ByteBufferContract {
  private ByteBufferContract() {}

  static void check(List<? extends Communicator> comms, int[] sizes, boolean direct)
      throws Exception {
    RankThreads.run(
        comms.size(),
        r -> {
          Communicator c = comms.get(r);
          for (int size : sizes) {
            checkAllReduce(c, size, direct, ReduceOp.SUM);
            checkAllReduce(c, size, direct, ReduceOp.MAX);
            checkReduceScatterAndAllGather(c, size, direct);
            checkBroadcast(c, size, direct);
          }
          return null;
        });
  }

  /** A buffer of {@code floats} floats with position, limit and order the collectives ignore. */
  private static ByteBuffer alloc(int floats, boolean direct) {
    ByteBuffer b = direct ? ByteBuffer.allocateDirect(floats * 4) : ByteBuffer.allocate(floats * 4);
    return b.order(ByteOrder.BIG_ENDIAN).limit(floats * 2).position(Math.min(3, floats * 2));
  }

  private static FloatBuffer le(ByteBuffer b) {
    return b.duplicate().clear().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
  }

  private static void assertUntouchedState(ByteBuffer b, int floats) {
    assertEquals(Math.min(3, floats * 2), b.position(), "position changed");
    assertEquals(floats * 2, b.limit(), "limit changed");
    assertEquals(ByteOrder.BIG_ENDIAN, b.order(), "order changed");
  }

  private static void checkAllReduce(Communicator c, int size, boolean direct, ReduceOp op) {
    int n = c.worldSize();
    int pad = 3;
    int total = size + 2 * pad;
    ByteBuffer b = alloc(total, direct);
    float[] arr = new float[total];
    java.util.Arrays.fill(arr, -42f);
    for (int i = 0; i < size; i++) {
      arr[pad + i] = CollectiveContract.input(c.rank(), i);
    }
    le(b).put(0, arr);
    c.allReduce(b, pad, size, op);
    c.allReduce(arr, pad, size, op);
    assertUntouchedState(b, total);
    FloatBuffer got = le(b);
    for (int i = 0; i < total; i++) {
      assertEquals(arr[i], got.get(i), op + " differs from the float[] collective at " + i);
    }
    for (int i = 0; i < size; i++) {
      double ref = op == ReduceOp.SUM ? 0 : Double.NEGATIVE_INFINITY;
      for (int q = 0; q < n; q++) {
        double x = CollectiveContract.input(q, i);
        ref = op == ReduceOp.SUM ? ref + x : Math.max(ref, x);
      }
      assertEquals(ref, got.get(pad + i), 1e-6 * (1 + Math.abs(ref)) * n, op + " at " + i);
    }
    for (int i = 0; i < pad; i++) {
      assertEquals(-42f, got.get(i), "margin before the data changed");
      assertEquals(-42f, got.get(pad + size + i), "margin after the data changed");
    }
  }

  private static void checkReduceScatterAndAllGather(Communicator c, int chunk, boolean direct) {
    int n = c.worldSize();
    int stride = chunk + 5;
    int total = 2 + (n - 1) * stride + chunk + 2;
    ByteBuffer b = alloc(total, direct);
    FloatBuffer f = le(b);
    for (int i = 0; i < total; i++) {
      f.put(i, CollectiveContract.input(c.rank(), i));
    }
    c.reduceScatter(b, 2, chunk, stride);
    assertUntouchedState(b, total);
    int mine = 2 + c.rank() * stride;
    for (int i = 0; i < chunk; i++) {
      double sum = 0;
      for (int q = 0; q < n; q++) {
        sum += CollectiveContract.input(q, mine + i);
      }
      assertEquals(sum, f.get(mine + i), 1e-6 * (1 + Math.abs(sum)) * n, "reduceScatter at " + i);
    }
    float[] before = new float[total];
    for (int i = 0; i < total; i++) {
      before[i] = CollectiveContract.input(c.rank(), i);
      f.put(i, before[i]);
    }
    for (int i = 0; i < chunk; i++) {
      f.put(mine + i, 1000f * c.rank() + i);
    }
    c.allGather(b, 2, chunk, stride);
    assertUntouchedState(b, total);
    for (int i = 0; i < total; i++) {
      int rel = i - 2;
      int q = rel < 0 ? -1 : rel / stride;
      boolean inChunk = q >= 0 && q < n && rel - q * stride < chunk;
      float want = inChunk ? 1000f * q + (rel - q * stride) : before[i];
      assertEquals(want, f.get(i), "allGather at float " + i + " (chunk " + chunk + ")");
    }
  }

  private static void checkBroadcast(Communicator c, int size, boolean direct) {
    int root = c.worldSize() - 1;
    ByteBuffer b = alloc(size + 1, direct);
    FloatBuffer f = le(b);
    for (int i = 0; i <= size; i++) {
      f.put(i, CollectiveContract.input(c.rank(), i));
    }
    c.broadcast(b, 1, size, root);
    assertUntouchedState(b, size + 1);
    assertEquals(CollectiveContract.input(c.rank(), 0), f.get(0), "broadcast wrote before offset");
    for (int i = 1; i <= size; i++) {
      assertEquals(CollectiveContract.input(root, i), f.get(i), "broadcast at " + i);
    }
  }
}
