package dev.danlu.launch.progress;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.danlu.launch.JobSecret;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The driver's progress endpoint: ranks POST {@link ProgressBatch} (or a single {@link
 * RankProgress}) JSON to {@code /progress} with an HMAC of the job secret in {@code X-Danlu-Token};
 * accepted reports go to the {@link ProgressBoard}. Bound to the driver's host (the address
 * executors already use for Spark RPC) on an ephemeral port. This is the live route: Spark's own
 * accumulators only merge when a task ends.
 */
public final class ProgressServer implements AutoCloseable {
  public static final String TOKEN_HEADER = "X-Danlu-Token";
  static final String TOKEN_LABEL = "danlu progress v1";
  private static final Logger LOG = LoggerFactory.getLogger(ProgressServer.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int MAX_BODY = 4 << 20; // a batch of 2000 steps is ~600 KB

  private final HttpServer server;
  private final ProgressBoard board;
  private final byte[] token;
  private volatile long rejected;

  public ProgressServer(String host, int port, byte[] jobSecret, ProgressBoard board)
      throws IOException {
    this.board = board;
    this.token = tokenFor(jobSecret).getBytes(StandardCharsets.US_ASCII);
    server = HttpServer.create(new InetSocketAddress(InetAddress.getByName(host), port), 64);
    server.createContext("/progress", this::handle);
    server.setExecutor(
        Executors.newSingleThreadExecutor(
            r -> {
              Thread t = new Thread(r, "danlu-progress-endpoint");
              t.setDaemon(true);
              return t;
            }));
    server.start();
  }

  public static String tokenFor(byte[] jobSecret) {
    return JobSecret.macHex(jobSecret, TOKEN_LABEL);
  }

  /** {@code http://host:port/progress}, what the tasks are told. */
  public String url() {
    InetSocketAddress a = server.getAddress();
    return "http://" + a.getHostString() + ":" + a.getPort() + "/progress";
  }

  /** Requests refused (bad token, bad body): a stranger poking the port shows up here. */
  public long rejected() {
    return rejected;
  }

  private void handle(HttpExchange ex) throws IOException {
    try (ex) {
      String given = ex.getRequestHeaders().getFirst(TOKEN_HEADER);
      if (!"POST".equals(ex.getRequestMethod())
          || given == null
          || !JobSecret.matches(token, given.getBytes(StandardCharsets.US_ASCII))) {
        rejected++;
        ex.sendResponseHeaders(403, -1);
        return;
      }
      byte[] body;
      try (InputStream in = ex.getRequestBody()) {
        body = in.readNBytes(MAX_BODY + 1);
      }
      ProgressBatch batch;
      try {
        if (body.length > MAX_BODY) {
          throw new IOException("body larger than " + MAX_BODY + " bytes");
        }
        com.fasterxml.jackson.databind.JsonNode tree = JSON.readTree(body);
        batch =
            tree.has("reports")
                ? JSON.treeToValue(tree, ProgressBatch.class)
                : single(JSON.treeToValue(tree, RankProgress.class));
      } catch (IOException | IllegalArgumentException e) {
        rejected++;
        LOG.warn("progress endpoint: unreadable report from {}: {}", ex.getRemoteAddress(), e);
        ex.sendResponseHeaders(400, -1);
        return;
      }
      long now = System.currentTimeMillis();
      boolean accepted = false;
      for (RankProgress p : batch.reports()) {
        accepted |= board.record(p.received(now));
      }
      for (TrainingEvent e : batch.events()) {
        accepted |= board.event(e.at(batch.attempt(), now));
      }
      ex.sendResponseHeaders(accepted ? 204 : 409, -1);
    }
  }

  private static ProgressBatch single(RankProgress p) {
    return new ProgressBatch(p.rank(), p.attempt(), List.of(p), List.of());
  }

  @Override
  public void close() {
    server.stop(0);
    ((java.util.concurrent.ExecutorService) server.getExecutor()).shutdownNow();
  }
}
