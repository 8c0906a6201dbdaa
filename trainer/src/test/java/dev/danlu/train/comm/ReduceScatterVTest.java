package dev.danlu.train.comm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Reduce-scatter-v (a chunk of its own size per rank, empty ones included) on the in-process
 * backend and on a real TCP ring over 127.0.0.1, N = 1..4: sums against a double reference, bits
 * against the ordinary reduce-scatter, and bytes on the wire.
 */
class ReduceScatterVTest {
  private static final byte[] SECRET = "rsv-test-secret".getBytes(StandardCharsets.UTF_8);

  /** 16-float slices: chunks of a few dozen floats already span several pipelined slices. */
  private static final TcpRingOptions SMALL_SLICES =
      TcpRingOptions.defaults()
          .withSliceBytes(64)
          .withConnectTimeoutMillis(20_000)
          .withOpTimeoutMillis(20_000);

  private static final int LEN = 211;

  /**
   * Chunk layouts for n ranks as {offsets..., counts...}: uneven and contiguous, empty chunks at
   * either end and in the middle, all empty, everything on the last rank, and chunks laid out in
   * the reverse of rank order with gaps (elements in no chunk must stay untouched).
   */
  static List<int[][]> layouts(int n) {
    List<int[][]> out = new ArrayList<>();
    int[] lens = {37, 0, 1, 50};
    int[] off = new int[n];
    int[] cnt = new int[n];
    int pos = 3;
    for (int i = 0; i < n; i++) {
      off[i] = pos;
      cnt[i] = lens[i % lens.length];
      pos += cnt[i];
    }
    out.add(new int[][] {off, cnt});
    out.add(new int[][] {new int[n], new int[n]});
    int[] lastOff = new int[n];
    int[] lastCnt = new int[n];
    lastOff[n - 1] = 5;
    lastCnt[n - 1] = 120;
    out.add(new int[][] {lastOff, lastCnt});
    int[] revOff = new int[n];
    int[] revCnt = new int[n];
    pos = 1;
    for (int i = n - 1; i >= 0; i--) {
      revOff[i] = pos;
      revCnt[i] = i == 1 ? 0 : 17 + 3 * i;
      pos += revCnt[i] + 2; // a gap after every chunk
    }
    out.add(new int[][] {revOff, revCnt});
    return out;
  }

  static void checkAgainstDoubleSums(List<? extends Communicator> comms) throws Exception {
    int n = comms.size();
    RankThreads.run(
        n,
        r -> {
          Communicator c = comms.get(r);
          for (int[][] lay : layouts(n)) {
            float[] buf = new float[LEN];
            for (int i = 0; i < LEN; i++) {
              buf[i] = CollectiveContract.input(r, i);
            }
            float[] before = buf.clone();
            c.reduceScatterV(buf, lay[0], lay[1]);
            boolean[] inChunk = new boolean[LEN];
            for (int q = 0; q < n; q++) {
              for (int i = lay[0][q]; i < lay[0][q] + lay[1][q]; i++) {
                inChunk[i] = true;
              }
            }
            for (int i = lay[0][r]; i < lay[0][r] + lay[1][r]; i++) {
              double sum = 0;
              for (int q = 0; q < n; q++) {
                sum += CollectiveContract.input(q, i);
              }
              assertEquals(
                  sum,
                  buf[i],
                  1e-6 * (1 + Math.abs(sum)) * n,
                  "rank " + r + " element " + i + " of " + Arrays.deepToString(lay));
            }
            for (int i = 0; i < LEN; i++) {
              if (!inChunk[i]) {
                assertEquals(before[i], buf[i], "element " + i + " is in no chunk: untouched");
              }
            }
          }
          return null;
        });
  }

  @Test
  void unevenAndEmptyChunksSumCorrectlyOnLocalAndTcpForOneToFourRanks() throws Exception {
    for (int n = 1; n <= 4; n++) {
      checkAgainstDoubleSums(LocalCommunicator.group(n, 20_000));
      List<TcpRingCommunicator> ring = RankThreads.tcpRing(n, SECRET, SMALL_SLICES);
      try {
        checkAgainstDoubleSums(ring);
      } finally {
        ring.forEach(TcpRingCommunicator::close);
      }
    }
  }

  /**
   * Regions cut across partitions at arbitrary points, each reduced by reduce-scatter-v, give the
   * same bits as one reduce-scatter of the whole buffer: what lets ZeRO overlap without changing
   * results. On TCP they also send exactly the same bytes. Bitwise on any CPU: no BLAS, and each
   * element is summed in the ring's fixed rank order however the buffer is cut.
   */
  static void tilingEqualsOneReduceScatter(List<? extends Communicator> comms) throws Exception {
    int n = comms.size();
    int part = 101;
    int[] cuts = {0, 13, 14, 99, 101, 150, 202, 203, 250, 303, 350, 404};
    List<long[]> bytes =
        RankThreads.run(
            n,
            r -> {
              Communicator c = comms.get(r);
              float[] whole = new float[n * part];
              for (int i = 0; i < whole.length; i++) {
                whole[i] = CollectiveContract.input(r, i) * 1.37f;
              }
              float[] pieces = whole.clone();
              long b0 = sent(c);
              c.reduceScatter(whole, 0, part);
              long b1 = sent(c);
              int hi = n * part;
              for (int k = cuts.length - 1; k >= 0 && hi > 0; k--) {
                int lo = Math.min(cuts[k], hi); // from the end down, as backward finishes them
                int[] off = new int[n];
                int[] cnt = new int[n];
                for (int q = 0; q < n; q++) {
                  off[q] = Math.max(lo, q * part);
                  cnt[q] = Math.max(0, Math.min(hi, (q + 1) * part) - off[q]);
                  off[q] = Math.min(off[q], hi);
                }
                c.reduceScatterV(pieces, off, cnt);
                hi = lo;
              }
              long b2 = sent(c);
              assertArrayEquals(
                  Arrays.copyOfRange(whole, r * part, (r + 1) * part),
                  Arrays.copyOfRange(pieces, r * part, (r + 1) * part),
                  "rank " + r + " of " + n + ": partition bits differ");
              return new long[] {b1 - b0, b2 - b1};
            });
    if (comms.get(0) instanceof TcpRingCommunicator) {
      for (int r = 0; r < n; r++) {
        long expect = 4L * (n - 1) * part; // a ring reduce-scatter sends N-1 chunks per rank
        System.out.printf(
            "N=%d rank %d: reduce-scatter sent %d bytes, %d regions of reduce-scatter-v sent %d%n",
            n, r, bytes.get(r)[0], cuts.length, bytes.get(r)[1]);
        assertEquals(expect, bytes.get(r)[0], "one reduce-scatter, rank " + r);
        assertEquals(expect, bytes.get(r)[1], "tiling regions, rank " + r);
      }
    }
  }

  private static long sent(Communicator c) {
    return c instanceof TcpRingCommunicator t ? t.bytesSent() : 0;
  }

  @Test
  void regionsTilingTheBufferEqualOneReduceScatterInBitsAndBytes() throws Exception {
    for (int n = 1; n <= 4; n++) {
      tilingEqualsOneReduceScatter(LocalCommunicator.group(n, 20_000));
      List<TcpRingCommunicator> ring = RankThreads.tcpRing(n, SECRET, SMALL_SLICES);
      try {
        tilingEqualsOneReduceScatter(ring);
      } finally {
        ring.forEach(TcpRingCommunicator::close);
      }
    }
  }

  @Test
  void directBufferPathEqualsArrayPathBitwise() throws Exception {
    int n = 3;
    List<TcpRingCommunicator> ring = RankThreads.tcpRing(n, SECRET, SMALL_SLICES);
    try {
      RankThreads.run(
          n,
          r -> {
            for (int[][] lay : layouts(n)) {
              float[] a = new float[LEN];
              for (int i = 0; i < LEN; i++) {
                a[i] = CollectiveContract.input(r, i);
              }
              ByteBuffer d = ByteBuffer.allocateDirect(4 * LEN).order(ByteOrder.LITTLE_ENDIAN);
              d.asFloatBuffer().put(a);
              ByteBuffer h = ByteBuffer.allocate(4 * LEN).order(ByteOrder.LITTLE_ENDIAN);
              h.asFloatBuffer().put(a);
              ring.get(r).reduceScatterV(a, lay[0], lay[1]);
              ring.get(r).reduceScatterV(d, lay[0], lay[1]); // zero-copy
              ring.get(r).reduceScatterV(h, lay[0], lay[1]); // heap: through an array
              int o = lay[0][r];
              int cnt = lay[1][r];
              float[] fromDirect = new float[cnt];
              float[] fromHeap = new float[cnt];
              d.asFloatBuffer().get(o, fromDirect);
              h.asFloatBuffer().get(o, fromHeap);
              assertArrayEquals(Arrays.copyOfRange(a, o, o + cnt), fromDirect, "direct, rank " + r);
              assertArrayEquals(Arrays.copyOfRange(a, o, o + cnt), fromHeap, "heap, rank " + r);
            }
            return null;
          });
    } finally {
      ring.forEach(TcpRingCommunicator::close);
    }
  }

  @Test
  void badChunksAreRejectedBeforeAnythingIsSent() throws Exception {
    LocalCommunicator local = LocalCommunicator.group(1).get(0);
    float[] buf = new float[10];
    IllegalArgumentException arity =
        assertThrows(
            IllegalArgumentException.class,
            () -> local.reduceScatterV(buf, new int[] {0, 1}, new int[] {1, 1}));
    assertTrue(
        arity.getMessage().contains("one offset and one count per rank"), arity.getMessage());
    IndexOutOfBoundsException range =
        assertThrows(
            IndexOutOfBoundsException.class,
            () -> local.reduceScatterV(buf, new int[] {8}, new int[] {3}));
    assertTrue(range.getMessage().contains("outside a buffer of 10"), range.getMessage());
    List<TcpRingCommunicator> ring = RankThreads.tcpRing(2, SECRET, SMALL_SLICES);
    try {
      IllegalArgumentException overlap =
          assertThrows(
              IllegalArgumentException.class,
              () -> ring.get(0).reduceScatterV(buf, new int[] {0, 4}, new int[] {5, 2}));
      assertTrue(overlap.getMessage().contains("overlap"), overlap.getMessage());
      // empty chunks may sit anywhere, even where another chunk is
      RankThreads.run(
          2,
          r -> {
            float[] b = new float[10];
            Arrays.fill(b, r + 1);
            ring.get(r).reduceScatterV(b, new int[] {0, 2}, new int[] {0, 4});
            if (r == 1) {
              assertArrayEquals(new float[] {3, 3, 3, 3}, Arrays.copyOfRange(b, 2, 6));
            }
            return null;
          });
    } finally {
      ring.forEach(TcpRingCommunicator::close);
    }
  }
}
