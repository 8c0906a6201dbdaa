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
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * torchrun-style rendezvous: a master listens on a known address ({@code DANLU_MASTER_ADDR}:{@code
 * DANLU_MASTER_PORT}), every rank connects, authenticates with the job secret and registers its
 * string; the master then sends the full list to everyone. Used at start (the ring's addresses,
 * NCCL's id); the ring itself then runs on ephemeral ports.
 *
 * <p>Two masters. {@code train-local} runs a {@link Server} in the launcher process, bound to an
 * ephemeral port before any worker starts, and sets {@code DANLU_MASTER_IS_LAUNCHER=1}: every rank,
 * rank 0 included, registers with it. Nothing can take the port between choosing and binding it (a
 * free port picked by the launcher and bound later by rank 0 was lost to another process once in
 * CI). Without that variable rank 0 is the master and binds the given port, as torchrun's
 * MASTER_PORT, for ranks started by something else.
 */
public final class MasterRendezvous implements Rendezvous {
  private static final Logger LOG = LoggerFactory.getLogger(MasterRendezvous.class);

  public static final String ENV_MASTER_ADDR = "DANLU_MASTER_ADDR";
  public static final String ENV_MASTER_PORT = "DANLU_MASTER_PORT";
  public static final String ENV_RANK = "DANLU_RANK";
  public static final String ENV_WORLD_SIZE = "DANLU_WORLD_SIZE";
  public static final String ENV_JOB_SECRET = "DANLU_JOB_SECRET";
  public static final String ENV_MASTER_IS_LAUNCHER = "DANLU_MASTER_IS_LAUNCHER";

  private final int rank;
  private final int world;
  private final String host;
  private final int port;
  private final byte[] secret;
  private final long timeoutMillis;
  private final boolean rank0Serves;

  /** Rank 0 serves at {@code host:port}. */
  public MasterRendezvous(
      int rank, int world, String host, int port, byte[] secret, long timeoutMillis) {
    this(rank, world, host, port, secret, timeoutMillis, true);
  }

  /**
   * @param rank0Serves false when a {@link Server} listens at {@code host:port} and rank 0
   *     registers with it like every other rank
   */
  public MasterRendezvous(
      int rank,
      int world,
      String host,
      int port,
      byte[] secret,
      long timeoutMillis,
      boolean rank0Serves) {
    this.rank0Serves = rank0Serves;
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
        timeoutMillis,
        !"1".equals(env.get(ENV_MASTER_IS_LAUNCHER)));
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
      return rank == 0 && rank0Serves ? serve(mine, deadline) : register(mine, deadline);
    } catch (IOException e) {
      throw new CommException(
          "rank " + rank + ": rendezvous with master " + host + ":" + port + " failed: " + e, e);
    }
  }

  private List<String> serve(String mine, long deadline) throws IOException {
    try (ServerSocketChannel server = ServerSocketChannel.open()) {
      server.bind(new InetSocketAddress(host, port), 64);
      server.configureBlocking(false);
      String[] all = new String[world];
      all[0] = mine;
      return gather(server, world, secret, all, deadline, "rendezvous master " + host + ":" + port);
    }
  }

  /**
   * Accepts authenticated registrations until every null entry of {@code all} is filled, then sends
   * the list to every registered rank. Strangers, bad secrets and duplicate ranks are logged and
   * dropped while the round goes on.
   */
  private static List<String> gather(
      ServerSocketChannel server,
      int world,
      byte[] secret,
      String[] all,
      long deadline,
      String master)
      throws IOException {
    SocketChannel[] peers = new SocketChannel[world];
    try {
      int missing = 0;
      for (String s : all) {
        missing += s == null ? 1 : 0;
      }
      while (missing > 0) {
        SocketChannel ch = server.accept();
        if (ch == null) {
          if (System.nanoTime() - deadline > 0) {
            List<Integer> absent = new ArrayList<>();
            for (int r = 0; r < world; r++) {
              if (all[r] == null) {
                absent.add(r);
              }
            }
            throw new CommTimeoutException(
                master
                    + ": ranks "
                    + absent
                    + " did not register in time; check their logs (did they start, with this"
                    + " job's secret?)");
          }
          sleepQuietly();
          continue;
        }
        ch.configureBlocking(false);
        String from = NioIo.describe(ch);
        try {
          long hs = earlier(deadline, System.nanoTime() + 10_000_000_000L);
          int r = PeerAuth.acceptSide(ch, secret, 0, hs);
          if (r < 0 || r >= world || all[r] != null) {
            throw new PeerAuth.AuthException(
                "rank " + r + " from " + from + " is invalid or a duplicate");
          }
          all[r] = readString(ch, hs);
          peers[r] = ch;
          missing--;
        } catch (CommException | IOException e) {
          LOG.warn("{}: rejected connection from {}: {}", master, from, e.getMessage());
          ch.close();
        }
      }
      byte[] list = encode(Arrays.asList(all));
      for (int r = 0; r < world; r++) {
        if (peers[r] != null) {
          int rr = r;
          try {
            NioIo.writeFully(
                peers[r],
                ByteBuffer.wrap(list),
                earlier(deadline, System.nanoTime() + 60_000_000_000L),
                () -> "sending the address list to rank " + rr);
          } catch (CommException | IOException e) {
            // that rank went away after registering: the others still get the list (the
            // launcher notices the dead rank); the next round goes on being served
            LOG.warn("{}: could not send the list to rank {}: {}", master, r, e.getMessage());
          }
        }
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
    String who =
        "rendezvous master ("
            + (rank0Serves ? "rank 0" : "the launcher")
            + " at "
            + host
            + ":"
            + port
            + ")";
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

  private static long earlier(long a, long b) {
    return a - b < 0 ? a : b;
  }

  private static void sleepQuietly() {
    try {
      Thread.sleep(20);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CommException("interrupted during rendezvous", e);
    }
  }

  /**
   * The master run by a launcher ({@code train-local}, benchmarks, tests) for the workers it
   * starts: bound before they start, so the port they are given is already held, and serving rounds
   * of registration (one per {@link #allGather}) until closed.
   */
  public static final class Server implements AutoCloseable {
    private final ServerSocketChannel server;
    private final Thread thread;
    private volatile Exception failure;

    private Server(ServerSocketChannel server, int world, byte[] secret) {
      this.server = server;
      String master = "rendezvous master " + address();
      this.thread =
          new Thread(
              () -> {
                try {
                  while (server.isOpen()) {
                    long noDeadline = System.nanoTime() + TimeUnit.DAYS.toNanos(365L * 50);
                    gather(server, world, secret, new String[world], noDeadline, master);
                  }
                } catch (java.nio.channels.ClosedChannelException e) {
                  // closed by the launcher: done
                } catch (CommException | IOException e) {
                  if (server.isOpen()) {
                    failure = e;
                    LOG.warn("{} stopped: {}", master, e.toString());
                  }
                }
              },
              "danlu-rendezvous-master");
      thread.setDaemon(true);
    }

    /** Binds an ephemeral port on {@code host} and starts serving {@code world} ranks. */
    public static Server start(String host, int world, byte[] secret) throws IOException {
      ServerSocketChannel ch = ServerSocketChannel.open();
      try {
        ch.bind(new InetSocketAddress(host, 0), 64);
        ch.configureBlocking(false);
      } catch (IOException e) {
        ch.close();
        throw e;
      }
      Server s = new Server(ch, world, secret.clone());
      s.thread.start();
      return s;
    }

    public int port() {
      try {
        return ((InetSocketAddress) server.getLocalAddress()).getPort();
      } catch (IOException e) {
        throw new IllegalStateException("rendezvous master socket is closed", e);
      }
    }

    private String address() {
      try {
        InetSocketAddress a = (InetSocketAddress) server.getLocalAddress();
        return a.getHostString() + ":" + a.getPort();
      } catch (IOException e) {
        return "?";
      }
    }

    /** The error that stopped serving, or null. */
    public Exception failure() {
      return failure;
    }

    @Override
    public void close() {
      try {
        server.close();
      } catch (IOException e) {
        LOG.warn("closing the rendezvous master: {}", e.toString());
      }
      try {
        thread.join(5_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
