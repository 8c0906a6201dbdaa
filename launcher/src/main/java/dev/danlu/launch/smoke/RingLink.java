package dev.danlu.launch.smoke;

import dev.danlu.launch.JobSecret;
import dev.danlu.launch.RankContext;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A rank's two ring connections over plain sockets: to the next rank (send) and from the previous
 * one (receive), each authenticated by an HMAC of the job secret so a stranger connecting to the
 * listener is turned away without disturbing the ring.
 */
final class RingLink implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(RingLink.class);
  private static final int MAGIC = 0xDA1E0001;
  private static final int TIMEOUT_MILLIS = 60_000;
  private static final int MAX_STRANGERS = 16;

  private final Socket toNext;
  private final Socket fromPrev;
  final DataOutputStream out;
  final DataInputStream in;
  final String prevAddress;

  private RingLink(Socket toNext, Socket fromPrev, String prevAddress) throws IOException {
    this.toNext = toNext;
    this.fromPrev = fromPrev;
    this.prevAddress = prevAddress;
    this.out = new DataOutputStream(toNext.getOutputStream());
    this.in = new DataInputStream(fromPrev.getInputStream());
  }

  static RingLink open(RankContext ctx) throws IOException {
    int w = ctx.worldSize();
    int next = (ctx.rank() + 1) % w;
    int prev = (ctx.rank() - 1 + w) % w;
    // Connect first: the peer's listener was bound before allGather, so the kernel completes the
    // connection from its backlog even before the peer calls accept().
    Socket toNext = connect(ctx.peerAddresses().get(next), next);
    DataOutputStream hello = new DataOutputStream(toNext.getOutputStream());
    hello.writeInt(MAGIC);
    hello.writeInt(ctx.rank());
    hello.writeInt(ctx.attempt());
    hello.write(JobSecret.mac(ctx.jobSecret(), label(ctx.rank(), next, ctx.attempt())));
    hello.flush();
    Socket fromPrev = accept(ctx, prev);
    return new RingLink(toNext, fromPrev, ctx.peerAddresses().get(prev));
  }

  private static String label(int from, int to, int attempt) {
    return "danlu ring " + from + "->" + to + " attempt " + attempt;
  }

  private static Socket connect(String address, int peer) throws IOException {
    int colon = address.lastIndexOf(':');
    InetSocketAddress a =
        new InetSocketAddress(
            address.substring(0, colon), Integer.parseInt(address.substring(colon + 1)));
    long deadline = System.currentTimeMillis() + TIMEOUT_MILLIS;
    while (true) {
      Socket s = new Socket();
      try {
        s.connect(a, 5_000);
        s.setTcpNoDelay(true);
        s.setSoTimeout(TIMEOUT_MILLIS);
        return s;
      } catch (ConnectException e) {
        s.close();
        if (System.currentTimeMillis() > deadline) {
          throw new IOException("rank " + peer + " at " + address + " refuses connections", e);
        }
        sleep(200);
      }
    }
  }

  private static Socket accept(RankContext ctx, int prev) throws IOException {
    int w = ctx.worldSize();
    byte[] expected = JobSecret.mac(ctx.jobSecret(), label(prev, ctx.rank(), ctx.attempt()));
    ctx.listener().setSoTimeout(TIMEOUT_MILLIS);
    for (int strangers = 0; strangers < MAX_STRANGERS; strangers++) {
      Socket s;
      try {
        s = ctx.listener().accept();
      } catch (SocketTimeoutException e) {
        throw new IOException(
            "rank "
                + prev
                + " at "
                + ctx.peerAddresses().get(prev)
                + " did not connect within "
                + TIMEOUT_MILLIS / 1000
                + "s",
            e);
      }
      s.setSoTimeout(5_000);
      s.setTcpNoDelay(true);
      try {
        DataInputStream in = new DataInputStream(s.getInputStream());
        int magic = in.readInt();
        int from = in.readInt();
        int attempt = in.readInt();
        byte[] mac = in.readNBytes(expected.length);
        if (magic == MAGIC
            && from == prev
            && attempt == ctx.attempt()
            && JobSecret.matches(expected, mac)) {
          s.setSoTimeout(TIMEOUT_MILLIS);
          return s;
        }
        LOG.warn(
            "{} rejected a connection from {}: not rank {} of this job (w={})",
            ctx.logPrefix(),
            s.getRemoteSocketAddress(),
            prev,
            w);
      } catch (IOException e) {
        LOG.warn("{} rejected {}: {}", ctx.logPrefix(), s.getRemoteSocketAddress(), e.toString());
      }
      s.close();
    }
    throw new IOException("more than " + MAX_STRANGERS + " unauthenticated connections; giving up");
  }

  private static void sleep(long ms) throws IOException {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
  }

  @Override
  public void close() throws IOException {
    try (toNext;
        fromPrev) {
      // both closed
    }
  }
}
