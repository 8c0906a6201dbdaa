package dev.danlu.train.comm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@link RingListener#adopt}: a channel bound and published by someone else (the Spark launcher)
 * keeps the connection a faster peer already queued in its backlog, so a rank that starts seconds
 * late still joins the ring (closing and re-binding the port reset that connection on a real
 * cluster).
 */
class RingListenerAdoptTest {
  @Test
  void lateRankAdoptsItsChannelAndServesThePeerThatConnectedEarly() throws Exception {
    byte[] secret = "adopt-test-secret-of-32-bytes-!!".getBytes();
    ServerSocketChannel ch0 = bound();
    ServerSocketChannel ch1 = bound();
    List<String> peers = List.of(address(ch0), address(ch1));
    // rank 0 joins at once: it connects to rank 1, whose owner has not taken the channel over yet
    CompletableFuture<float[]> rank0 =
        CompletableFuture.supplyAsync(
            () -> sum(RingListener.adopt(ch0, peers.get(0)), 0, peers, secret));
    Thread.sleep(1500); // the connection from rank 0 now waits in rank 1's backlog
    float[] r1 = sum(RingListener.adopt(ch1, peers.get(1)), 1, peers, secret);
    float[] r0 = rank0.get(30, TimeUnit.SECONDS);
    assertArrayEquals(new float[] {3f, 30f}, r0);
    assertArrayEquals(new float[] {3f, 30f}, r1);
  }

  @Test
  void aClosedChannelIsRefusedNamingTheAddress() throws Exception {
    ServerSocketChannel ch = bound();
    String addr = address(ch);
    ch.close();
    CommException e = assertThrows(CommException.class, () -> RingListener.adopt(ch, addr));
    org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains(addr), e.getMessage());
  }

  private static float[] sum(RingListener l, int rank, List<String> peers, byte[] secret) {
    try (TcpRingCommunicator c = l.join(rank, peers, secret, TcpRingOptions.defaults())) {
      float[] buf = {rank + 1f, 10f * (rank + 1)};
      c.allReduce(buf, 0, 2, ReduceOp.SUM);
      return buf;
    }
  }

  private static ServerSocketChannel bound() throws Exception {
    ServerSocketChannel ch = ServerSocketChannel.open();
    ch.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
    return ch;
  }

  private static String address(ServerSocketChannel ch) throws Exception {
    return "127.0.0.1:" + ((InetSocketAddress) ch.getLocalAddress()).getPort();
  }
}
