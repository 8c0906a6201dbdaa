package dev.danlu.train.comm;

import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * torchrun-style rendezvous for {@code train-local}: rank 0 listens on a known address ({@code
 * DANLU_MASTER_ADDR}:{@code DANLU_MASTER_PORT}), every other rank connects, authenticates with the
 * job secret and registers its string; rank 0 then sends the full list to everyone. Used once, at
 * start; the ring itself then runs on ephemeral ports.
 */
public final class MasterRendezvous implements Rendezvous {
  private static final Logger LOG = LoggerFactory.getLogger(MasterRendezvous.class);

  public static final String ENV_MASTER_ADDR = "DANLU_MASTER_ADDR";
  public static final String ENV_MASTER_PORT = "DANLU_MASTER_PORT";
  public static final String ENV_RANK = "DANLU_RANK";
  public static final String ENV_WORLD_SIZE = "DANLU_WORLD_SIZE";
  public static final String ENV_JOB_SECRET = "DANLU_JOB_SECRET";

  private final int rank;
  private final int world;
  private final String host;
  private final int port;
  private final byte[] secret;
  private final long timeoutMillis;

  public MasterRendezvous(
      int rank, int world, String host, int port, byte[] secret, long timeoutMillis) {
    this.rank = rank;
    this.world = world;
    this.host = host;
    this.port = port;
    this.secret = secret.clone();
    this.timeoutMillis = timeoutMillis;
  }

  /** Reads rank, world size, master address and secret from the {@code DANLU_*} variables. */
  public static MasterRendezvous fromEnv(Map<String, String> env, long timeoutMillis) {
    return new MasterRendezvous(
        Integer.parseInt(require(env, ENV_RANK)),
        Integer.parseInt(require(env, ENV_WORLD_SIZE)),
        require(env, ENV_MASTER_ADDR),
        Integer.parseInt(require(env, ENV_MASTER_PORT)),
        require(env, ENV_JOB_SECRET).getBytes(StandardCharsets.UTF_8),
        timeoutMillis);
  }

  static String require(Map<String, String> env, String key) {
    String v = env.get(key);
    if (v == null || v.isEmpty()) {
      throw new IllegalStateException(
          "environment variable "
              + key
              + " is not set; train-local sets "
              + ENV_RANK
              + ", "
              + ENV_WORLD_SIZE
              + ", "
              + ENV_MASTER_ADDR
              + ", "
              + ENV_MASTER_PORT
              + " and "
              + ENV_JOB_SECRET
              + " for each worker");
    }
    return v;
  }

  public int rank() {
    return rank;
  }

  public int worldSize() {
    return world;
  }

  public byte[] secret() {
    return secret.clone();
  }

  @Override
  public List<String> allGather(String mine) {
    if (world == 1) {
      return List.of(mine);
    }
    long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
    try {
      return rank == 0 ? serve(mine, deadline) : register(mine, deadline);
    } catch (IOException e) {
      throw new CommException(
          "rank " + rank + ": rendezvous with master " + host + ":" + port + " failed: " + e, e);
    }
  }

  private List<String> serve(String mine, long deadline) throws IOException {
    String[] all = new String[world];
    all[0] = mine;
    SocketChannel[] peers = new SocketChannel[world];
    try (ServerSocketChannel server = ServerSocketChannel.open()) {
      server.bind(new InetSocketAddress(host, port), 64);
      server.configureBlocking(false);
      int joined = 1;
      while (joined < world) {
        SocketChannel ch = server.accept();
        if (ch == null) {
          if (System.nanoTime() > deadline) {
            List<Integer> missing = new ArrayList<>();
            for (int r = 1; r < world; r++) {
              if (all[r] == null) {
                missing.add(r);
              }
            }
            throw new CommTimeoutException(
                "rendezvous master "
                    + host
                    + ":"
                    + port
                    + ": ranks "
                    + missing
                    + " did not register within "
                    + timeoutMillis
                    + " ms");
          }
          sleepQuietly();
          continue;
        }
        ch.configureBlocking(false);
        String from = NioIo.describe(ch);
        try {
          long hs = Math.min(deadline, System.nanoTime() + 10_000_000_000L);
          int r = PeerAuth.acceptSide(ch, secret, 0, hs);
          if (r <= 0 || r >= world || all[r] != null) {
            throw new PeerAuth.AuthException(
                "rank " + r + " from " + from + " is invalid or a duplicate");
          }
          all[r] = readString(ch, hs);
          peers[r] = ch;
          joined++;
        } catch (CommException | IOException e) {
          LOG.warn("rendezvous master: rejected connection from {}: {}", from, e.getMessage());
          ch.close();
        }
      }
      byte[] list = encode(Arrays.asList(all));
      for (int r = 1; r < world; r++) {
        int rr = r;
        NioIo.writeFully(
            peers[r],
            ByteBuffer.wrap(list),
            deadline,
            () -> "sending the address list to rank " + rr);
      }
      return List.of(all);
    } finally {
      for (SocketChannel p : peers) {
        if (p != null) {
          p.close();
        }
      }
    }
  }

  private List<String> register(String mine, long deadline) throws IOException {
    String who = "rendezvous master (rank 0 at " + host + ":" + port + ")";
    while (true) {
      try (SocketChannel ch = SocketChannel.open()) {
        try {
          ch.connect(new InetSocketAddress(host, port));
        } catch (ConnectException e) {
          if (System.nanoTime() > deadline) {
            throw new CommTimeoutException(
                "rank "
                    + rank
                    + ": could not reach the "
                    + who
                    + " within "
                    + timeoutMillis
                    + " ms");
          }
          sleepQuietly();
          continue;
        }
        ch.configureBlocking(false);
        PeerAuth.connectSide(ch, secret, rank, who, deadline);
        byte[] b = mine.getBytes(StandardCharsets.UTF_8);
        NioIo.writeFully(
            ch,
            ByteBuffer.allocate(4 + b.length).putInt(b.length).put(b).flip(),
            deadline,
            () -> "registering with the " + who);
        ByteBuffer n = ByteBuffer.allocate(4);
        NioIo.readFully(ch, n, deadline, () -> "waiting for the address list from the " + who);
        int count = n.flip().getInt();
        List<String> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
          out.add(readString(ch, deadline));
        }
        return out;
      }
    }
  }

  private static String readString(SocketChannel ch, long deadline) throws IOException {
    ByteBuffer len = ByteBuffer.allocate(4);
    NioIo.readFully(ch, len, deadline, () -> "reading a rendezvous string");
    int n = len.flip().getInt();
    if (n < 0 || n > 1 << 20) {
      throw new CommException("rendezvous: implausible string length " + n);
    }
    ByteBuffer b = ByteBuffer.allocate(n);
    NioIo.readFully(ch, b, deadline, () -> "reading a rendezvous string");
    return new String(b.array(), StandardCharsets.UTF_8);
  }

  private static byte[] encode(List<String> all) {
    int size = 4;
    List<byte[]> parts = new ArrayList<>();
    for (String s : all) {
      byte[] b = s.getBytes(StandardCharsets.UTF_8);
      parts.add(b);
      size += 4 + b.length;
    }
    ByteBuffer out = ByteBuffer.allocate(size).putInt(all.size());
    for (byte[] b : parts) {
      out.putInt(b.length).put(b);
    }
    return out.array();
  }

  private static void sleepQuietly() {
    try {
      Thread.sleep(20);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CommException("interrupted during rendezvous", e);
    }
  }
}
