package dev.danlu.train.comm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The checks every backend must pass, run with each rank's communicator on its own thread. Inputs
 * are a deterministic function of (rank, index); references are computed in double.
 */
final class CollectiveContract {
  private CollectiveContract() {}

  static float input(int rank, int i) {
    // Mixed magnitudes and signs so an order-dependent sum would show; exact in float.
    return (float) (Math.sin(0.37 * i + 1.3 * rank) * Math.pow(2, (i + rank) % 7 - 3));
  }

  static void check(List<? extends Communicator> comms, int[] sizes) throws Exception {
    int n = comms.size();
    RankThreads.run(
        n,
        r -> {
          Communicator c = comms.get(r);
          assertEquals(r, c.rank());
          assertEquals(n, c.worldSize());
          for (int size : sizes) {
            checkAllReduce(c, size);
            checkReduceScatterAndAllGather(c, size);
            checkBroadcast(c, size);
          }
          byte[][] got =
              c.allGatherBytes(("rank-" + r).repeat(r + 1).getBytes(StandardCharsets.UTF_8));
          for (int q = 0; q < n; q++) {
            assertEquals(("rank-" + q).repeat(q + 1), new String(got[q], StandardCharsets.UTF_8));
          }
          byte[] b = c.broadcastBytes(r == n - 1 ? new byte[] {7, 8, 9} : new byte[] {1}, n - 1);
          assertArrayEquals(new byte[] {7, 8, 9}, b);
          c.barrier();
          return null;
        });
  }

  private static void checkAllReduce(Communicator c, int size) {
    int n = c.worldSize();
    int pad = 3; // data sits at an offset inside a larger array; the margins must not change
    float[] buf = new float[size + 2 * pad];
    java.util.Arrays.fill(buf, -42f);
    for (int i = 0; i < size; i++) {
      buf[pad + i] = input(c.rank(), i);
    }
    float[] max = buf.clone();
    c.allReduce(buf, pad, size, ReduceOp.SUM);
    c.allReduce(max, pad, size, ReduceOp.MAX);
    for (int i = 0; i < size; i++) {
      double sum = 0;
      float mx = Float.NEGATIVE_INFINITY;
      for (int q = 0; q < n; q++) {
        sum += input(q, i);
        mx = Math.max(mx, input(q, i));
      }
      assertEquals(
          sum,
          buf[pad + i],
          1e-6 * (1 + Math.abs(sum)) * n,
          "allReduce SUM at " + i + " of " + size);
      assertEquals(mx, max[pad + i], "allReduce MAX at " + i + " of " + size);
    }
    assertMargins(buf, pad, size);
  }

  private static void checkReduceScatterAndAllGather(Communicator c, int chunk) {
    int n = c.worldSize();
    int stride = chunk + 5; // strided layout as ZeRO buckets use it
    float[] buf = new float[2 + (n - 1) * stride + chunk];
    for (int i = 0; i < buf.length; i++) {
      buf[i] = input(c.rank(), i);
    }
    float[] before = buf.clone();
    c.reduceScatter(buf, 2, chunk, stride);
    int mine = 2 + c.rank() * stride;
    for (int i = 0; i < chunk; i++) {
      double sum = 0;
      for (int q = 0; q < n; q++) {
        sum += input(q, mine + i);
      }
      assertEquals(sum, buf[mine + i], 1e-6 * (1 + Math.abs(sum)) * n, "reduceScatter at " + i);
    }
    // all-gather: each rank contributes a recognisable chunk; the gaps between chunks stay as they
    // were
    float[] g = before.clone();
    for (int i = 0; i < chunk; i++) {
      g[mine + i] = 1000f * c.rank() + i;
    }
    c.allGather(g, 2, chunk, stride);
    for (int q = 0; q < n; q++) {
      for (int i = 0; i < chunk; i++) {
        assertEquals(1000f * q + i, g[2 + q * stride + i], "allGather chunk " + q + " at " + i);
      }
    }
    for (int q = 0; q < n - 1; q++) {
      for (int i = chunk; i < stride; i++) {
        assertEquals(
            before[2 + q * stride + i], g[2 + q * stride + i], "gap between chunks changed");
      }
    }
  }

  private static void checkBroadcast(Communicator c, int size) {
    int root = c.worldSize() / 2;
    float[] buf = new float[size];
    for (int i = 0; i < size; i++) {
      buf[i] = input(c.rank(), i);
    }
    c.broadcast(buf, 0, size, root);
    for (int i = 0; i < size; i++) {
      assertEquals(input(root, i), buf[i], "broadcast at " + i);
    }
  }

  private static void assertMargins(float[] buf, int pad, int size) {
    for (int i = 0; i < pad; i++) {
      assertEquals(-42f, buf[i]);
      assertEquals(-42f, buf[pad + size + i]);
    }
  }
}
