package dev.danlu.train.comm;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Collectives over a TCP ring: rank r sends to rank r+1 and receives from rank r-1 (mod N).
 *
 * <p>All-reduce is the bandwidth-optimal ring reduce-scatter followed by a ring all-gather: each
 * rank sends and receives 2(N-1)/N of the buffer, independent of N. Chunks travel in slices ({@link
 * TcpRingOptions#sliceBytes()}); a received slice is reduced and becomes sendable at once, so
 * reducing slice k overlaps with the kernel moving slice k+1 through the socket buffers, and the
 * ring runs as a pipeline rather than N-1 store-and-forward steps.
 *
 * <p>Floats travel little-endian from direct buffers. The sum for chunk c always starts at rank c+1
 * and proceeds around the ring, so results do not depend on timing (bit-reproducible for a fixed N)
 * but differ from a single-rank sum in float rounding.
 *
 * <p>Setup: {@link #create} binds, publishes {@code host:port} through a {@link Rendezvous},
 * connects to the next rank and accepts the previous one, both authenticated by {@link PeerAuth};
 * strangers are logged and dropped while setup continues.
 */
public final class TcpRingCommunicator implements Communicator {
  private static final Logger LOG = LoggerFactory.getLogger(TcpRingCommunicator.class);

  private final int rank;
  private final int world;
  private final List<String> addresses;
  private final TcpRingOptions opts;
  private final SocketChannel next; // null when world == 1
  private final SocketChannel prev;
  private final Selector selector;
  private final SelectionKey nextKey;
  private final SelectionKey prevKey;
  private final ByteBuffer sendBuf;
  private final ByteBuffer recvBuf;
  private final float[] scratch;

  TcpRingCommunicator(
      int rank, List<String> addresses, TcpRingOptions opts, SocketChannel next, SocketChannel prev)
      throws IOException {
    this.rank = rank;
    this.world = addresses.size();
    this.addresses = List.copyOf(addresses);
    this.opts = opts;
    this.next = next;
    this.prev = prev;
    this.sendBuf = ByteBuffer.allocateDirect(opts.sliceBytes()).order(ByteOrder.LITTLE_ENDIAN);
    this.recvBuf = ByteBuffer.allocateDirect(opts.sliceBytes()).order(ByteOrder.LITTLE_ENDIAN);
    this.scratch = new float[opts.sliceBytes() / 4];
    if (world > 1) {
      selector = Selector.open();
      next.configureBlocking(false);
      prev.configureBlocking(false);
      nextKey = next.register(selector, 0);
      prevKey = prev.register(selector, 0);
    } else {
      selector = null;
      nextKey = null;
      prevKey = null;
    }
  }

  /**
   * Joins the ring: binds {@code bindHost} on an ephemeral port, exchanges addresses through {@code
   * rendezvous}, then connects. Use {@link RingListener} directly when the port must be chosen
   * before the rendezvous.
   */
  public static TcpRingCommunicator create(
      int rank, String bindHost, byte[] secret, Rendezvous rendezvous, TcpRingOptions opts) {
    try (RingListener listener = RingListener.bind(bindHost, 0)) {
      List<String> addrs = rendezvous.allGather(listener.address());
      return listener.join(rank, addrs, secret, opts);
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
    return "tcp";
  }

  private int nextRank() {
    return (rank + 1) % world;
  }

  private int prevRank() {
    return (rank - 1 + world) % world;
  }

  private String peer(int r) {
    return "rank " + r + " (" + addresses.get(r) + ")";
  }

  // ---- float collectives -------------------------------------------------------------------

  @Override
  public void allReduce(float[] buf, int offset, int count, ReduceOp op) {
    checkRange(buf, offset, count);
    if (world == 1 || count == 0) {
      return;
    }
    int[] start = new int[world];
    int[] len = new int[world];
    int base = count / world;
    int rem = count % world;
    for (int i = 0; i < world; i++) {
      start[i] = offset + i * base + Math.min(i, rem);
      len[i] = base + (i < rem ? 1 : 0);
    }
    ringReduceScatter(buf, start, len, op);
    ringAllGather(buf, start, len);
  }

  @Override
  public void reduceScatter(float[] buf, int offset, int chunk, int stride) {
    checkStrided(buf, offset, chunk, stride);
    if (world > 1 && chunk > 0) {
      ringReduceScatter(buf, strided(offset, stride), equal(chunk), ReduceOp.SUM);
    }
  }

  @Override
  public void allGather(float[] buf, int offset, int chunk, int stride) {
    checkStrided(buf, offset, chunk, stride);
    if (world > 1 && chunk > 0) {
      ringAllGather(buf, strided(offset, stride), equal(chunk));
    }
  }

  /** Pipelined chain root → root+1 → ... → root-1: each rank forwards a slice once it has it. */
  @Override
  public void broadcast(float[] buf, int offset, int count, int root) {
    checkRange(buf, offset, count);
    if (world == 1 || count == 0) {
      return;
    }
    int d = (rank - root + world) % world;
    Segments all = new Segments();
    all.addSliced(offset, count, scratch.length);
    Segments none = new Segments();
    Segments send = d < world - 1 ? all : none;
    Segments recv = d > 0 ? all : none;
    stream(buf, send, d == 0 ? send.size : 0, recv, null);
  }

  /**
   * Step s sends chunk (r-s-1) and receives chunk (r-s-2), adding it to the local copy; after N-1
   * steps rank r holds the full sum of chunk r. What is sent at step s+1 is exactly what was
   * received at step s, which is what lets {@link #stream} pipeline across steps.
   */
  private void ringReduceScatter(float[] buf, int[] start, int[] len, ReduceOp op) {
    Segments send = new Segments();
    Segments recv = new Segments();
    for (int s = 0; s < world - 1; s++) {
      int sc = Math.floorMod(rank - s - 1, world);
      int rc = Math.floorMod(rank - s - 2, world);
      send.addSliced(start[sc], len[sc], scratch.length);
      recv.addSliced(start[rc], len[rc], scratch.length);
    }
    int first = Segments.sliceCount(len[Math.floorMod(rank - 1, world)], scratch.length);
    stream(buf, send, first, recv, op);
  }

  /** Step s sends chunk (r-s) and receives chunk (r-s-1), which it forwards at step s+1. */
  private void ringAllGather(float[] buf, int[] start, int[] len) {
    Segments send = new Segments();
    Segments recv = new Segments();
    for (int s = 0; s < world - 1; s++) {
      int sc = Math.floorMod(rank - s, world);
      int rc = Math.floorMod(rank - s - 1, world);
      send.addSliced(start[sc], len[sc], scratch.length);
      recv.addSliced(start[rc], len[rc], scratch.length);
    }
    stream(buf, send, Segments.sliceCount(len[rank], scratch.length), recv, null);
  }

  /**
   * The event loop of every bulk collective. Send segment j is ready when j < {@code ready0} or
   * when receive segment j - ready0 has been combined into {@code buf} (the ring forwards what it
   * received). {@code op == null} copies instead of reducing. Fails if nothing moves for {@link
   * TcpRingOptions#opTimeoutMillis()}, naming the peer it was waiting on.
   */
  private void stream(float[] buf, Segments send, int ready0, Segments recv, ReduceOp op) {
    int sent = 0;
    int received = 0;
    boolean sending = false;
    boolean receiving = false;
    long lastProgress = System.nanoTime();
    long timeoutNanos = opts.opTimeoutMillis() * 1_000_000L;
    try {
      while (sent < send.size || received < recv.size) {
        boolean progress = false;
        if (!sending && sent < send.size && (sent < ready0 || received > sent - ready0)) {
          sendBuf.clear();
          sendBuf.asFloatBuffer().put(buf, send.off[sent], send.len[sent]);
          sendBuf.limit(send.len[sent] * 4);
          sending = true;
        }
        if (sending) {
          if (next.write(sendBuf) > 0) {
            progress = true;
          }
          if (!sendBuf.hasRemaining()) {
            sending = false;
            sent++;
          }
        }
        if (received < recv.size) {
          if (!receiving) {
            recvBuf.clear().limit(recv.len[received] * 4);
            receiving = true;
          }
          int n = prev.read(recvBuf);
          if (n < 0) {
            throw new CommException(
                "rank "
                    + rank
                    + ": "
                    + peer(prevRank())
                    + " closed the connection mid-collective"
                    + " (it died or left the job); check that worker's log");
          }
          if (n > 0) {
            progress = true;
          }
          if (!recvBuf.hasRemaining()) {
            combine(buf, recv.off[received], recv.len[received], op);
            receiving = false;
            received++;
          }
        }
        if (progress) {
          lastProgress = System.nanoTime();
          continue;
        }
        boolean wantWrite = sending;
        boolean wantRead = received < recv.size;
        nextKey.interestOps(wantWrite ? SelectionKey.OP_WRITE : 0);
        prevKey.interestOps(wantRead ? SelectionKey.OP_READ : 0);
        long left = timeoutNanos - (System.nanoTime() - lastProgress);
        if (left <= 0) {
          throw new CommTimeoutException(
              "rank "
                  + rank
                  + ": no progress for "
                  + opts.opTimeoutMillis()
                  + " ms while "
                  + (wantRead
                      ? "waiting for data from " + peer(prevRank())
                      : "waiting to send to " + peer(nextRank()))
                  + " ("
                  + received
                  + "/"
                  + recv.size
                  + " slices received, "
                  + sent
                  + "/"
                  + send.size
                  + " sent); that worker is stalled, dead, or called a different"
                  + " collective");
        }
        selector.select(Math.max(1, left / 1_000_000));
        selector.selectedKeys().clear();
      }
    } catch (IOException e) {
      throw new CommException(
          "rank "
              + rank
              + ": socket error talking to "
              + peer(nextRank())
              + " / "
              + peer(prevRank())
              + ": "
              + e.getMessage(),
          e);
    }
  }

  private void combine(float[] buf, int off, int len, ReduceOp op) {
    FloatBuffer in = recvBuf.flip().asFloatBuffer();
    if (op == null) {
      in.get(buf, off, len);
      return;
    }
    in.get(scratch, 0, len);
    if (op == ReduceOp.SUM) {
      for (int i = 0; i < len; i++) {
        buf[off + i] += scratch[i];
      }
    } else {
      for (int i = 0; i < len; i++) {
        buf[off + i] = Math.max(buf[off + i], scratch[i]);
      }
    }
  }

  // ---- control messages ----------------------------------------------------------------------

  @Override
  public void barrier() {
    allGatherBytes(new byte[0]);
  }

  /** N-1 ring steps; step s forwards the message of rank r-s and receives that of rank r-s-1. */
  @Override
  public byte[][] allGatherBytes(byte[] mine) {
    byte[][] out = new byte[world][];
    out[rank] = mine.clone();
    for (int s = 0; s < world - 1; s++) {
      byte[] got = exchange(out[Math.floorMod(rank - s, world)]);
      out[Math.floorMod(rank - s - 1, world)] = got;
    }
    return out;
  }

  private byte[] exchange(byte[] msg) {
    long deadline = System.nanoTime() + opts.opTimeoutMillis() * 1_000_000L;
    ByteBuffer out = ByteBuffer.allocate(4 + msg.length).putInt(msg.length).put(msg).flip();
    ByteBuffer head = ByteBuffer.allocate(4);
    ByteBuffer body = null;
    try {
      while (out.hasRemaining() || body == null || body.hasRemaining()) {
        boolean progress = out.hasRemaining() && next.write(out) > 0;
        ByteBuffer in = body == null ? head : body;
        if (in.hasRemaining()) {
          int n = prev.read(in);
          if (n < 0) {
            throw new CommException(
                "rank " + rank + ": " + peer(prevRank()) + " closed the connection (it died?)");
          }
          progress |= n > 0;
        }
        if (body == null && !head.hasRemaining()) {
          body = ByteBuffer.allocate(head.flip().getInt());
        }
        if (progress || !(out.hasRemaining() || body == null || body.hasRemaining())) {
          continue;
        }
        nextKey.interestOps(out.hasRemaining() ? SelectionKey.OP_WRITE : 0);
        prevKey.interestOps(SelectionKey.OP_READ);
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          throw new CommTimeoutException(
              "rank "
                  + rank
                  + ": control message not exchanged within "
                  + opts.opTimeoutMillis()
                  + " ms (waiting on "
                  + peer(prevRank())
                  + " and "
                  + peer(nextRank())
                  + ")");
        }
        selector.select(Math.max(1, left / 1_000_000));
        selector.selectedKeys().clear();
      }
    } catch (IOException e) {
      throw new CommException("rank " + rank + ": socket error in a control message: " + e, e);
    }
    return body.array();
  }

  // ---- helpers -----------------------------------------------------------------------------

  private int[] strided(int offset, int stride) {
    int[] s = new int[world];
    for (int i = 0; i < world; i++) {
      s[i] = offset + i * stride;
    }
    return s;
  }

  private int[] equal(int chunk) {
    int[] l = new int[world];
    java.util.Arrays.fill(l, chunk);
    return l;
  }

  private static void checkRange(float[] buf, int offset, int count) {
    if (offset < 0 || count < 0 || (long) offset + count > buf.length) {
      throw new IndexOutOfBoundsException(
          "collective range ["
              + offset
              + ", "
              + offset
              + "+"
              + count
              + ") outside a buffer of "
              + buf.length);
    }
  }

  private void checkStrided(float[] buf, int offset, int chunk, int stride) {
    if (stride < chunk) {
      throw new IllegalArgumentException("stride " + stride + " < chunk " + chunk);
    }
    checkRange(buf, offset, (int) Math.min(Integer.MAX_VALUE, (long) (world - 1) * stride + chunk));
  }

  @Override
  public void close() {
    try {
      if (selector != null) {
        selector.close();
        next.close();
        prev.close();
      }
    } catch (IOException e) {
      LOG.warn("rank {}: error closing ring sockets: {}", rank, e.toString());
    }
  }

  /** Ordered (offset, length) pieces of the user buffer, each at most one slice. */
  static final class Segments {
    int[] off = new int[16];
    int[] len = new int[16];
    int size;

    void addSliced(int start, int count, int slice) {
      for (int o = 0; o < count; o += slice) {
        if (size == off.length) {
          off = java.util.Arrays.copyOf(off, size * 2);
          len = java.util.Arrays.copyOf(len, size * 2);
        }
        off[size] = start + o;
        len[size] = Math.min(slice, count - o);
        size++;
      }
    }

    static int sliceCount(int count, int slice) {
      return (count + slice - 1) / slice;
    }
  }

  static InetSocketAddress parse(String hostPort) {
    int colon = hostPort.lastIndexOf(':');
    if (colon <= 0) {
      throw new IllegalArgumentException("expected host:port, got '" + hostPort + "'");
    }
    return new InetSocketAddress(
        hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
  }

  static void tune(SocketChannel ch, TcpRingOptions opts) throws IOException {
    ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
    if (opts.socketBufferBytes() > 0) {
      ch.setOption(StandardSocketOptions.SO_SNDBUF, opts.socketBufferBytes());
      ch.setOption(StandardSocketOptions.SO_RCVBUF, opts.socketBufferBytes());
    }
  }
}
