package dev.danlu.train.comm;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Collectives over a TCP ring: rank r sends to rank r+1 and receives from rank r-1 (mod N).
 *
 * <p>All-reduce is the bandwidth-optimal ring reduce-scatter followed by a ring all-gather: each
 * rank sends and receives 2(N-1)/N of the buffer, independent of N. Chunks travel in slices ({@link
 * TcpRingOptions#sliceBytes()}); a received slice is reduced and becomes sendable at once, so the
 * ring runs as a pipeline rather than N-1 store-and-forward steps. The calling thread receives and
 * reduces while a dedicated sender thread writes: reducing slice k overlaps with sending slice k+1,
 * and both directions of each full-duplex link stay busy (a single-threaded loop measured 3x slower
 * at 64 MB).
 *
 * <p>Floats travel little-endian from direct buffers. A {@code float[]} costs a copy into the send
 * buffer per slice sent and a copy (or reduction) out of the receive buffer per slice received. The
 * {@code ByteBuffer} overloads on a direct buffer skip both copies: slices are written from the
 * caller's memory, and all-gather and broadcast read into it; only reductions pass through the
 * receive buffer, added in place by OpenBLAS's saxpy on the two buffers' memory (or, without
 * OpenBLAS, through {@link FloatSlices} tiles); 15-25 % less CPU per byte for all-reduce than the
 * {@code float[]} path, docs/benchmarks.md.
 *
 * <p>The sum for chunk c always starts at rank c+1 and proceeds around the ring, so results do not
 * depend on timing (bit-reproducible for a fixed N) but differ from a single-rank sum in float
 * rounding.
 *
 * <p>Receives are blocking reads (cheaper than a selector loop on the hot path). A watchdog thread
 * enforces {@link TcpRingOptions#opTimeoutMillis()}: when nothing has arrived for that long, or the
 * sender thread has failed, it closes the receiving socket, which ends the blocked read, and the
 * collective fails naming the peer. The ring is unusable after such a failure (as after any failure
 * mid-collective: the peers' positions in the stream no longer agree) and says so.
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
  private final SocketChannel prev; // blocking reads by the calling thread
  private final ExecutorService sender; // one thread: blocking writes to next
  private final ScheduledExecutorService watchdog; // ends a stalled read by closing prev
  private volatile boolean receiving; // the calling thread is reading prev
  private volatile long lastRecvProgress;
  private volatile Future<?> currentSend; // the sender's job of the running operation
  private volatile String prevClosedBecause; // set (before closing prev) by the watchdog
  private volatile String broken; // why the ring can no longer be used, once it can't
  private volatile int receivedSlices; // progress of the current stream, read by the sender
  private volatile boolean aborted; // the receive side failed: the sender must stop waiting
  private volatile long lastSendProgress;
  private final AtomicLong bytesSent = new AtomicLong();
  private final ByteBuffer sendBuf; // stages float[] slices for the sender thread
  private final ByteBuffer recvBuf; // receives slices that are reduced rather than stored as is
  private org.bytedeco.javacpp.FloatPointer recvPointer; // recvBuf for native adds, made once
  private final int sliceFloats;
  private final float[] tileA = new float[FloatSlices.TILE]; // receiver-thread reduction tiles
  private final float[] tileB = new float[FloatSlices.TILE];

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
    this.sliceFloats = opts.sliceBytes() / 4;
    if (world > 1) {
      next.configureBlocking(true);
      prev.configureBlocking(true);
      sender = Executors.newSingleThreadExecutor(daemon("danlu-ring-send-" + rank));
      watchdog = Executors.newSingleThreadScheduledExecutor(daemon("danlu-ring-watchdog-" + rank));
      long period = Math.max(10, Math.min(100, opts.opTimeoutMillis() / 10));
      watchdog.scheduleWithFixedDelay(this::watch, period, period, TimeUnit.MILLISECONDS);
    } else {
      sender = null;
      watchdog = null;
    }
  }

  private static java.util.concurrent.ThreadFactory daemon(String name) {
    return r -> {
      Thread t = new Thread(r, name);
      t.setDaemon(true);
      return t;
    };
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

  @Override
  public boolean zeroCopyBuffers() {
    return true;
  }

  /**
   * Payload bytes this rank has written to its successor in float collectives (control messages
   * excluded): what tests and benchmarks use to check how much a collective puts on the wire.
   */
  public long bytesSent() {
    return bytesSent.get();
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
    allReduce(new Target(buf), offset, count, op);
  }

  @Override
  public void allReduce(ByteBuffer buf, int offset, int count, ReduceOp op) {
    if (!buf.isDirect()) {
      Communicator.super.allReduce(buf, offset, count, op);
      return;
    }
    FloatSlices.checkRange(buf, offset, count);
    allReduce(new Target(buf), offset, count, op);
  }

  private void allReduce(Target buf, int offset, int count, ReduceOp op) {
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
      ringReduceScatter(new Target(buf), strided(offset, stride), equal(chunk), ReduceOp.SUM);
    }
  }

  @Override
  public void reduceScatter(ByteBuffer buf, int offset, int chunk, int stride) {
    if (!buf.isDirect()) {
      Communicator.super.reduceScatter(buf, offset, chunk, stride);
      return;
    }
    FloatSlices.checkRange(buf, offset, FloatSlices.span(world, chunk, stride));
    if (world > 1 && chunk > 0) {
      ringReduceScatter(new Target(buf), strided(offset, stride), equal(chunk), ReduceOp.SUM);
    }
  }

  /**
   * The ring reduce-scatter with a chunk length per rank: the schedule is unchanged (step s sends
   * chunk r-s-1), empty chunks simply contribute no slices, so each element's sum still starts at
   * its owner's successor and the bytes sent are those of the chunks other than this rank's own.
   */
  @Override
  public void reduceScatterV(float[] buf, int[] offsets, int[] counts) {
    FloatSlices.checkV(world, offsets, counts, buf.length);
    if (world > 1) {
      ringReduceScatter(new Target(buf), offsets.clone(), counts.clone(), ReduceOp.SUM);
    }
  }

  @Override
  public void reduceScatterV(ByteBuffer buf, int[] offsets, int[] counts) {
    if (!buf.isDirect()) {
      Communicator.super.reduceScatterV(buf, offsets, counts);
      return;
    }
    FloatSlices.checkV(world, offsets, counts, buf.capacity() / 4);
    FloatSlices.checkRange(buf, 0, 0);
    if (world > 1) {
      ringReduceScatter(new Target(buf), offsets.clone(), counts.clone(), ReduceOp.SUM);
    }
  }

  @Override
  public void allGather(float[] buf, int offset, int chunk, int stride) {
    checkStrided(buf, offset, chunk, stride);
    if (world > 1 && chunk > 0) {
      ringAllGather(new Target(buf), strided(offset, stride), equal(chunk));
    }
  }

  @Override
  public void allGather(ByteBuffer buf, int offset, int chunk, int stride) {
    if (!buf.isDirect()) {
      Communicator.super.allGather(buf, offset, chunk, stride);
      return;
    }
    FloatSlices.checkRange(buf, offset, FloatSlices.span(world, chunk, stride));
    if (world > 1 && chunk > 0) {
      ringAllGather(new Target(buf), strided(offset, stride), equal(chunk));
    }
  }

  /** Pipelined chain root → root+1 → ... → root-1: each rank forwards a slice once it has it. */
  @Override
  public void broadcast(float[] buf, int offset, int count, int root) {
    checkRange(buf, offset, count);
    broadcast(new Target(buf), offset, count, root);
  }

  @Override
  public void broadcast(ByteBuffer buf, int offset, int count, int root) {
    if (!buf.isDirect()) {
      Communicator.super.broadcast(buf, offset, count, root);
      return;
    }
    FloatSlices.checkRange(buf, offset, count);
    broadcast(new Target(buf), offset, count, root);
  }

  private void broadcast(Target buf, int offset, int count, int root) {
    if (world == 1 || count == 0) {
      return;
    }
    int d = (rank - root + world) % world;
    Segments all = new Segments();
    all.addSliced(offset, count, sliceFor(count));
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
  private void ringReduceScatter(Target buf, int[] start, int[] len, ReduceOp op) {
    Segments send = new Segments();
    Segments recv = new Segments();
    int slice = sliceFor(len);
    for (int s = 0; s < world - 1; s++) {
      int sc = Math.floorMod(rank - s - 1, world);
      int rc = Math.floorMod(rank - s - 2, world);
      send.addSliced(start[sc], len[sc], slice);
      recv.addSliced(start[rc], len[rc], slice);
    }
    int first = Segments.sliceCount(len[Math.floorMod(rank - 1, world)], slice);
    stream(buf, send, first, recv, op);
  }

  /** Step s sends chunk (r-s) and receives chunk (r-s-1), which it forwards at step s+1. */
  private void ringAllGather(Target buf, int[] start, int[] len) {
    Segments send = new Segments();
    Segments recv = new Segments();
    int slice = sliceFor(len);
    for (int s = 0; s < world - 1; s++) {
      int sc = Math.floorMod(rank - s, world);
      int rc = Math.floorMod(rank - s - 1, world);
      send.addSliced(start[sc], len[sc], slice);
      recv.addSliced(start[rc], len[rc], slice);
    }
    stream(buf, send, Segments.sliceCount(len[rank], slice), recv, null);
  }

  /**
   * The slice for chunks of up to {@code maxChunk} floats: a quarter of the chunk, so a ring of
   * more than two ranks keeps several slices in flight per chunk, but at least {@link
   * #MIN_SLICE_FLOATS} (per-slice costs) and at most the configured slice. On this project's 2-core
   * loopback benchmark, 4 MB slices cost 5-10 % less CPU per byte than 1 MB ones at 64 MB and 8 MB
   * slices 5-15 % more (docs/benchmarks.md); every rank computes the same slice from the same
   * lengths.
   */
  private int sliceFor(int... chunkLengths) {
    int max = 0;
    for (int l : chunkLengths) {
      max = Math.max(max, l);
    }
    return Math.min(sliceFloats, Math.max(MIN_SLICE_FLOATS, (max + 3) / 4));
  }

  private static final int MIN_SLICE_FLOATS = 256 << 10; // 1 MB

  /**
   * Runs one bulk collective: this thread receives slices from prev and combines them into {@code
   * buf}, while the sender thread writes slices to next. Send segment j is ready when j < {@code
   * ready0} or when receive segment j - ready0 has been combined (the ring forwards what it
   * received). Sending and receiving on separate threads keeps both directions of the full-duplex
   * link busy. {@code op == null} copies instead of reducing. Fails if nothing moves for {@link
   * TcpRingOptions#opTimeoutMillis()}, naming the peer it was waiting on.
   */
  private void stream(Target buf, Segments send, int ready0, Segments recv, ReduceOp op) {
    checkUsable();
    receivedSlices = 0;
    aborted = false;
    lastSendProgress = System.nanoTime();
    Thread receiver = Thread.currentThread();
    Future<?> sending = submitSend(() -> sendLoop(buf, send, ready0, receiver));
    int received = 0;
    boolean reading = false;
    ByteBuffer into = recvBuf;
    startReceiving(sending);
    boolean completed = false;
    try {
      while (received < recv.size) {
        if (!reading) {
          // a direct destination takes copies in place; reductions need the incoming slice apart
          into =
              buf.direct != null && op == null
                  ? FloatSlices.bytes(buf.direct, recv.off[received], recv.len[received])
                  : recvBuf.clear().limit(recv.len[received] * 4);
          reading = true;
        }
        if (readPrev(into) < 0) {
          throw prevClosed("mid-collective");
        }
        if (!into.hasRemaining()) {
          if (into == recvBuf) {
            combine(buf, recv.off[received], recv.len[received], op);
          }
          reading = false;
          received++;
          receivedSlices = received; // publishes the combined data to the sender (volatile)
          LockSupport.unpark(senderThread);
        }
      }
      stopReceiving();
      awaitSender(sending, send.size);
      completed = true;
    } catch (ClosedChannelException e) { // closed by the watchdog, close(), or an interrupt
      int got = received;
      throw receiveStopped(
          e,
          sending,
          () ->
              "no data from "
                  + peer(prevRank())
                  + " for "
                  + opts.opTimeoutMillis()
                  + " ms ("
                  + got
                  + "/"
                  + recv.size
                  + " slices received); that worker is stalled, dead, or called a different"
                  + " collective");
    } catch (IOException e) {
      broken = "socket error receiving from " + peer(prevRank());
      throw new CommException(
          "rank " + rank + ": socket error receiving from " + peer(prevRank()) + ": " + e, e);
    } catch (ExecutionException e) {
      throw sendFailure(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CommException("rank " + rank + " interrupted in a collective", e);
    } finally {
      stopReceiving();
      aborted = true; // releases a sender still waiting for data that will never come
      LockSupport.unpark(senderThread);
      if (!completed) {
        abandon(sending, "a collective failed");
      }
    }
  }

  /**
   * After a collective that did not complete (any exception, including an interrupt or an error in
   * a reduction) the peers' byte streams no longer line up and floats carry no framing, so the ring
   * refuses further work, and a sender still writing is stopped rather than left to mix its tail
   * into the next collective's stream.
   */
  private void abandon(Future<?> sending, String why) {
    if (broken == null) {
      broken = why;
    }
    sending.cancel(true);
  }

  private void startReceiving(Future<?> sending) {
    synchronized (watchLock) {
      currentSend = sending;
      prevClosedBecause = null;
      lastRecvProgress = System.nanoTime();
      receiving = true;
    }
  }

  /**
   * Ends the watched part of an operation. Under the watchdog's lock, so a decision taken for this
   * operation cannot close the socket under the next one; if the watchdog did close it, the ring is
   * unusable even when the operation got all its data.
   */
  private void stopReceiving() {
    synchronized (watchLock) {
      receiving = false;
      if (prevClosedBecause != null && broken == null) {
        broken = "the watchdog closed the connection from " + peer(prevRank());
      }
    }
  }

  /** One blocking read from prev; progress resets the watchdog's clock. */
  private int readPrev(ByteBuffer into) throws IOException {
    int n = prev.read(into);
    if (n > 0) {
      lastRecvProgress = System.nanoTime();
    }
    return n;
  }

  /**
   * Runs on the watchdog thread: ends a blocked read by closing prev when nothing has arrived for
   * the operation timeout, or when the sender thread failed (the receiver would otherwise wait for
   * data the broken ring will never deliver).
   */
  private void watch() {
    synchronized (watchLock) {
      if (!receiving || prevClosedBecause != null) {
        return;
      }
      Future<?> s = currentSend;
      String why = null;
      if (s != null && s.isDone() && failed(s)) {
        why = "the sender failed";
      } else if (System.nanoTime() - lastRecvProgress
          > TimeUnit.MILLISECONDS.toNanos(opts.opTimeoutMillis())) {
        why = "no data for " + opts.opTimeoutMillis() + " ms";
      }
      if (why != null) {
        prevClosedBecause = why;
        try {
          prev.close();
        } catch (IOException e) {
          LOG.warn("rank {}: closing the stalled connection: {}", rank, e.toString());
        }
      }
    }
  }

  private final Object watchLock = new Object();

  private static boolean failed(Future<?> f) {
    try {
      f.get(0, TimeUnit.MILLISECONDS);
      return false;
    } catch (ExecutionException | java.util.concurrent.CancellationException e) {
      return true;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    } catch (TimeoutException e) {
      return false;
    }
  }

  /**
   * The exception for a read that ended because prev was closed: by the watchdog (a timeout naming
   * the peer, or the sender's own failure), by an interrupt of the calling thread, or by {@link
   * #close}.
   */
  private RuntimeException receiveStopped(
      ClosedChannelException e, Future<?> sending, java.util.function.Supplier<String> stall) {
    stopReceiving();
    if (e instanceof ClosedByInterruptException) {
      broken = "a collective was interrupted";
      return new CommException("rank " + rank + " interrupted in a collective", e);
    }
    String why = prevClosedBecause;
    if (why == null) {
      broken = "the communicator was closed";
      return new CommException("rank " + rank + ": the communicator was closed mid-collective", e);
    }
    if (why.equals("the sender failed") && sending != null) {
      try {
        sending.get();
      } catch (ExecutionException x) {
        return sendFailure(x);
      } catch (InterruptedException x) {
        Thread.currentThread().interrupt();
      } catch (java.util.concurrent.CancellationException x) {
        // fall through: reported as closed below
      }
    }
    broken = "a collective timed out waiting for " + peer(prevRank());
    return new CommTimeoutException("rank " + rank + ": " + stall.get());
  }

  private CommException sendFailure(ExecutionException e) {
    broken = "sending to " + peer(nextRank()) + " failed";
    Throwable c = e.getCause();
    return c instanceof CommException ce
        ? ce
        : new CommException(
            "rank " + rank + ": sending to " + peer(nextRank()) + " failed: " + c, c);
  }

  private void checkUsable() {
    if (closed) {
      throw new CommException("rank " + rank + ": the communicator is closed");
    }
    String b = broken;
    if (b != null) {
      throw new CommException(
          "rank "
              + rank
              + ": this ring cannot run more collectives after an earlier failure ("
              + b
              + "); the job has to restart (it resumes from its last checkpoint)");
    }
  }

  private volatile Thread senderThread;
  private volatile boolean closed;

  private Future<?> submitSend(Runnable task) {
    try {
      return sender.submit(task);
    } catch (java.util.concurrent.RejectedExecutionException e) {
      throw new CommException("rank " + rank + ": the communicator is closed", e);
    }
  }

  private void sendLoop(Target buf, Segments send, int ready0, Thread receiver) {
    senderThread = Thread.currentThread();
    try {
      for (int j = 0; j < send.size; j++) {
        while (j >= ready0 && receivedSlices <= j - ready0) {
          if (aborted) {
            return;
          }
          LockSupport.parkNanos(this, 1_000_000);
        }
        ByteBuffer out;
        if (buf.direct != null) {
          out = FloatSlices.bytes(buf.direct, send.off[j], send.len[j]); // zero-copy
        } else {
          sendBuf.clear();
          sendBuf.asFloatBuffer().put(buf.array, send.off[j], send.len[j]);
          out = sendBuf.limit(send.len[j] * 4);
        }
        while (out.hasRemaining()) {
          bytesSent.addAndGet(next.write(out));
          lastSendProgress = System.nanoTime();
        }
      }
    } catch (IOException e) {
      throw new CommException(
          "rank " + rank + ": socket error sending to " + peer(nextRank()) + ": " + e, e);
    }
  }

  /** Waits for the sender while it keeps making progress; a stalled next rank times out. */
  private void awaitSender(Future<?> sending, int slices)
      throws ExecutionException, InterruptedException {
    long timeoutNanos = TimeUnit.MILLISECONDS.toNanos(opts.opTimeoutMillis());
    while (true) {
      try {
        sending.get(100, TimeUnit.MILLISECONDS);
        return;
      } catch (TimeoutException e) {
        if (System.nanoTime() - lastSendProgress > timeoutNanos) {
          broken = "a collective timed out sending to " + peer(nextRank());
          throw new CommTimeoutException(
              "rank "
                  + rank
                  + ": "
                  + peer(nextRank())
                  + " accepted no data for "
                  + opts.opTimeoutMillis()
                  + " ms (sending "
                  + slices
                  + " slices); that worker is"
                  + " stalled, dead, or called a different collective");
        }
      }
    }
  }

  private void combine(Target buf, int off, int len, ReduceOp op) {
    if (buf.direct != null && op == ReduceOp.SUM && FloatSlices.nativeAdd()) {
      if (recvPointer == null) {
        recvPointer = FloatSlices.pointer(recvBuf);
      }
      FloatSlices.addNative(recvPointer, buf.pointer(), off, len);
      return;
    }
    FloatBuffer in = recvBuf.flip().asFloatBuffer();
    if (buf.direct != null) {
      FloatSlices.combine(in, buf.floats, off, len, op, tileA, tileB);
    } else {
      FloatSlices.combine(in, buf.array, off, len, op, tileA, tileB);
    }
  }

  /**
   * The caller's data: a {@code float[]}, whose slices the sender copies into {@link #sendBuf}; or
   * a direct buffer, whose slices are written to the socket and (when copied rather than reduced)
   * read from it in place. A heap {@code ByteBuffer} is not addressable by the socket either and
   * goes through an array.
   */
  private static final class Target {
    final float[] array;
    final ByteBuffer direct;
    final FloatBuffer floats; // little-endian view of direct, for reductions
    private org.bytedeco.javacpp.FloatPointer pointer; // direct's memory, for native adds

    Target(float[] array) {
      this.array = array;
      this.direct = null;
      this.floats = null;
    }

    org.bytedeco.javacpp.FloatPointer pointer() {
      if (pointer == null) {
        pointer = FloatSlices.pointer(direct);
      }
      return pointer;
    }

    Target(ByteBuffer direct) {
      this.array = null;
      this.direct = direct;
      this.floats = FloatSlices.floats(direct);
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
    checkUsable();
    ByteBuffer out = ByteBuffer.allocate(4 + msg.length).putInt(msg.length).put(msg).flip();
    lastSendProgress = System.nanoTime();
    Future<?> sending =
        submitSend(
            () -> {
              try {
                while (out.hasRemaining()) {
                  next.write(out);
                }
              } catch (IOException e) {
                throw new CommException(
                    "rank " + rank + ": socket error sending to " + peer(nextRank()) + ": " + e, e);
              }
              lastSendProgress = System.nanoTime();
            });
    startReceiving(sending);
    boolean completed = false;
    try {
      ByteBuffer head = ByteBuffer.allocate(4);
      readFullyPrev(head);
      int len = head.flip().getInt();
      if (len < 0 || len > 1 << 26) {
        broken = "a malformed control message from " + peer(prevRank());
        throw new CommException(
            "rank "
                + rank
                + ": "
                + peer(prevRank())
                + " sent a control message of "
                + len
                + " bytes; the ranks are out of step (did they call different collectives?)");
      }
      ByteBuffer body = ByteBuffer.allocate(len);
      readFullyPrev(body);
      stopReceiving();
      awaitSender(sending, 1);
      completed = true;
      return body.array();
    } catch (ClosedChannelException e) {
      throw receiveStopped(
          e,
          sending,
          () ->
              "timed out waiting "
                  + opts.opTimeoutMillis()
                  + " ms for a control message from "
                  + peer(prevRank()));
    } catch (IOException e) {
      broken = "socket error in a control message";
      throw new CommException("rank " + rank + ": socket error in a control message: " + e, e);
    } catch (ExecutionException e) {
      throw sendFailure(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CommException("rank " + rank + " interrupted in a control message", e);
    } finally {
      stopReceiving();
      if (!completed) {
        abandon(sending, "a control message failed");
      }
    }
  }

  private void readFullyPrev(ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      if (readPrev(b) < 0) {
        throw prevClosed("while sending a control message");
      }
    }
  }

  /** The previous rank closed its end (end of stream): the ring is unusable from now on. */
  private CommException prevClosed(String when) {
    broken = peer(prevRank()) + " closed the connection";
    return new CommException(
        "rank "
            + rank
            + ": "
            + peer(prevRank())
            + " closed the connection "
            + when
            + " (it died or left the job); check that worker's log");
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
    closed = true;
    if (sender != null) {
      sender.shutdownNow();
      watchdog.shutdownNow();
      closeQuietly(next); // each on its own: a failure on one must not leave the other open
      closeQuietly(prev);
    }
  }

  private void closeQuietly(SocketChannel ch) {
    try {
      ch.close();
    } catch (IOException e) {
      LOG.warn("rank {}: error closing a ring socket: {}", rank, e.toString());
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
