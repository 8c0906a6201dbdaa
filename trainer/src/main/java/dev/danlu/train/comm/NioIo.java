package dev.danlu.train.comm;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.function.Supplier;

/**
 * Blocking-with-deadline reads and writes on non-blocking channels (NIO channels ignore SO_TIMEOUT,
 * so deadlines need a selector). Used for handshakes and small control messages; bulk collectives
 * run their own event loop in {@link TcpRingCommunicator}.
 */
final class NioIo {
  private NioIo() {}

  static void writeFully(SocketChannel ch, ByteBuffer b, long deadlineNanos, Supplier<String> what)
      throws IOException {
    try (Selector sel = Selector.open()) {
      SelectionKey key = ch.register(sel, SelectionKey.OP_WRITE);
      while (b.hasRemaining()) {
        if (ch.write(b) == 0) {
          waitFor(sel, deadlineNanos, what);
        }
      }
      key.cancel();
      sel.selectNow(); // deregisters the channel so it can join another selector
    }
  }

  static void readFully(SocketChannel ch, ByteBuffer b, long deadlineNanos, Supplier<String> what)
      throws IOException {
    try (Selector sel = Selector.open()) {
      SelectionKey key = ch.register(sel, SelectionKey.OP_READ);
      while (b.hasRemaining()) {
        int n = ch.read(b);
        if (n < 0) {
          throw new CommException("connection closed by the other side while " + what.get());
        }
        if (n == 0) {
          waitFor(sel, deadlineNanos, what);
        }
      }
      key.cancel();
      sel.selectNow();
    }
  }

  private static void waitFor(Selector sel, long deadlineNanos, Supplier<String> what)
      throws IOException {
    long left = deadlineNanos - System.nanoTime();
    if (left <= 0
        || sel.select(Math.max(1, left / 1_000_000)) == 0 && System.nanoTime() >= deadlineNanos) {
      throw new CommTimeoutException("timed out " + what.get());
    }
    sel.selectedKeys().clear();
  }

  static String describe(SocketChannel ch) {
    try {
      InetSocketAddress a = (InetSocketAddress) ch.getRemoteAddress();
      return a == null ? "?" : a.getHostString() + ":" + a.getPort();
    } catch (IOException e) {
      return "?";
    }
  }
}
