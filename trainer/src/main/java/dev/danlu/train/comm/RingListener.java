package dev.danlu.train.comm;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The bound-but-not-yet-connected state of a ring rank, shaped for a Spark barrier task: {@link
 * #bind} → publish {@link #address()} (BarrierTaskContext.allGather) → {@link #join} with
 * everyone's addresses. Port 0 picks a free port, avoiding the clashes of executors sharing a host.
 */
public final class RingListener implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(RingListener.class);

  private final ServerSocketChannel server;
  private final String address;

  private RingListener(ServerSocketChannel server, String address) {
    this.server = server;
    this.address = address;
  }

  /** Binds {@code host} (an address other ranks can reach) on {@code port}, 0 for any free one. */
  public static RingListener bind(String host, int port) {
    try {
      ServerSocketChannel ch = ServerSocketChannel.open();
      ch.bind(new InetSocketAddress(host, port), 64);
      int bound = ((InetSocketAddress) ch.getLocalAddress()).getPort();
      return new RingListener(ch, host + ":" + bound);
    } catch (IOException e) {
      throw new CommException("cannot listen on " + host + ":" + port + ": " + e.getMessage(), e);
    }
  }

  /** {@code host:port} to publish to the other ranks. */
  public String address() {
    return address;
  }

  /**
   * Connects to rank+1 and accepts rank-1 (both authenticated with {@code secret}), concurrently so
   * no ordering between ranks is needed. Connections that fail authentication are logged and
   * dropped while waiting continues. Closes this listener.
   */
  public TcpRingCommunicator join(
      int rank, List<String> addresses, byte[] secret, TcpRingOptions opts) {
    int world = addresses.size();
    if (rank < 0 || rank >= world) {
      throw new IllegalArgumentException("rank " + rank + " outside world of " + world);
    }
    if (secret == null || secret.length == 0) {
      throw new IllegalArgumentException("the job secret must not be empty");
    }
    if (!addresses.get(rank).equals(address)) {
      throw new IllegalArgumentException(
          "rendezvous returned "
              + addresses.get(rank)
              + " for rank "
              + rank
              + " but this rank listens on "
              + address
              + " (ranks passed in the wrong order?)");
    }
    try (this) {
      if (world == 1) {
        return new TcpRingCommunicator(rank, addresses, opts, null, null);
      }
      long deadline = System.nanoTime() + opts.connectTimeoutMillis() * 1_000_000L;
      int prevRank = (rank - 1 + world) % world;
      int nextRank = (rank + 1) % world;
      ExecutorService pool =
          Executors.newCachedThreadPool(
              r -> {
                Thread t = new Thread(r, "danlu-ring-accept-" + rank);
                t.setDaemon(true);
                return t;
              });
      try {
        CompletableFuture<SocketChannel> prev = new CompletableFuture<>();
        pool.submit(
            () -> acceptLoop(rank, prevRank, addresses, secret, opts, deadline, prev, pool));
        SocketChannel next =
            connect(rank, nextRank, addresses.get(nextRank), secret, opts, deadline);
        SocketChannel p;
        try {
          p = prev.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
          next.close();
          throw new CommTimeoutException(
              "rank "
                  + rank
                  + ": rank "
                  + prevRank
                  + " ("
                  + addresses.get(prevRank)
                  + ") did not connect within "
                  + opts.connectTimeoutMillis()
                  + " ms; is that worker running and able to reach "
                  + address
                  + "?");
        } catch (ExecutionException e) {
          next.close();
          throw e.getCause() instanceof CommException ce
              ? ce
              : new CommException(e.getCause().toString(), e);
        }
        return new TcpRingCommunicator(rank, addresses, opts, next, p);
      } finally {
        pool.shutdownNow();
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CommException("rank " + rank + " interrupted while joining the ring", e);
    }
  }

  private void acceptLoop(
      int rank,
      int prevRank,
      List<String> addresses,
      byte[] secret,
      TcpRingOptions opts,
      long deadline,
      CompletableFuture<SocketChannel> result,
      ExecutorService pool) {
    try (Selector sel = Selector.open()) {
      server.configureBlocking(false);
      server.register(sel, SelectionKey.OP_ACCEPT);
      while (!result.isDone() && System.nanoTime() < deadline) {
        sel.select(Math.max(1, Math.min(200, (deadline - System.nanoTime()) / 1_000_000)));
        sel.selectedKeys().clear();
        SocketChannel ch;
        while (!result.isDone() && (ch = server.accept()) != null) {
          SocketChannel c = ch;
          // Each handshake runs on its own thread so a silent stranger cannot block the real peer.
          pool.submit(() -> handshake(c, rank, prevRank, secret, opts, deadline, result));
        }
      }
    } catch (IOException e) {
      result.completeExceptionally(
          new CommException("rank " + rank + ": accepting on " + address + " failed: " + e, e));
    }
  }

  private void handshake(
      SocketChannel ch,
      int rank,
      int prevRank,
      byte[] secret,
      TcpRingOptions opts,
      long deadline,
      CompletableFuture<SocketChannel> result) {
    String from = NioIo.describe(ch);
    try {
      ch.configureBlocking(false);
      long hsDeadline =
          Math.min(deadline, System.nanoTime() + opts.handshakeTimeoutMillis() * 1_000_000L);
      int peer = PeerAuth.acceptSide(ch, secret, rank, hsDeadline);
      if (peer != prevRank) {
        throw new PeerAuth.AuthException(
            "authenticated rank "
                + peer
                + " from "
                + from
                + " connected to rank "
                + rank
                + ", which only accepts rank "
                + prevRank);
      }
      TcpRingCommunicator.tune(ch, opts);
      if (!result.complete(ch)) {
        ch.close();
      }
    } catch (CommException | IOException e) {
      LOG.warn("rank {}: rejected connection from {}: {}", rank, from, e.getMessage());
      try {
        ch.close();
      } catch (IOException ignored) {
        // already rejecting
      }
    }
  }

  private static SocketChannel connect(
      int rank, int nextRank, String target, byte[] secret, TcpRingOptions opts, long deadline)
      throws IOException, InterruptedException {
    InetSocketAddress addr = TcpRingCommunicator.parse(target);
    String who = "rank " + nextRank + " (" + target + ")";
    Exception last = null;
    while (System.nanoTime() < deadline) {
      SocketChannel ch = SocketChannel.open();
      try {
        ch.configureBlocking(false);
        ch.connect(addr);
        try (Selector sel = Selector.open()) {
          ch.register(sel, SelectionKey.OP_CONNECT);
          while (!ch.finishConnect()) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
              break;
            }
            sel.select(Math.max(1, left / 1_000_000));
            sel.selectedKeys().clear();
          }
          ch.keyFor(sel).cancel();
          sel.selectNow();
        }
        if (!ch.isConnected()) {
          break;
        }
        int got = PeerAuth.connectSide(ch, secret, rank, who, deadline);
        if (got != nextRank) {
          throw new PeerAuth.AuthException(
              target + " answered as rank " + got + ", expected " + nextRank);
        }
        TcpRingCommunicator.tune(ch, opts);
        return ch;
      } catch (ConnectException e) {
        last = e; // not listening yet: retry until the deadline
        ch.close();
        Thread.sleep(50);
      } catch (IOException | RuntimeException e) {
        ch.close();
        throw e instanceof CommException ce
            ? ce
            : new CommException("rank " + rank + ": connecting to " + who + " failed: " + e, e);
      }
    }
    throw new CommTimeoutException(
        "rank "
            + rank
            + ": could not connect to "
            + who
            + " within "
            + opts.connectTimeoutMillis()
            + " ms"
            + (last == null ? "" : " (last error: " + last.getMessage() + ")")
            + "; is that worker running and is the port reachable?");
  }

  @Override
  public void close() {
    try {
      server.close();
    } catch (IOException e) {
      LOG.warn("closing listener {}: {}", address, e.toString());
    }
  }
}
