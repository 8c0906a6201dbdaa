package dev.danlu.launch.progress;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.launch.ProgressReporter;
import java.io.IOException;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The executor side of live progress: {@link #report} logs a rank-prefixed line and hands the
 * report to a daemon thread that POSTs it to the driver. Training never waits for the network: a
 * newer report replaces one not yet sent, and a driver that does not answer costs a log line, not a
 * failed rank.
 */
public final class HttpProgressReporter implements ProgressReporter, AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(HttpProgressReporter.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int TIMEOUT_MILLIS = 5_000;

  private final URI url;
  private final String token;
  private final int rank;
  private final int attempt;
  private final String logPrefix;
  private final AtomicReference<RankProgress> pending = new AtomicReference<>();
  private final Thread sender;
  private volatile boolean closed;
  private long failures;

  /**
   * @param url the driver endpoint, or null to only log (e.g. when the endpoint is disabled)
   */
  public HttpProgressReporter(String url, String token, int rank, int attempt, String logPrefix) {
    this.url = url == null ? null : URI.create(url);
    this.token = token;
    this.rank = rank;
    this.attempt = attempt;
    this.logPrefix = logPrefix;
    this.sender = new Thread(this::sendLoop, "danlu-progress-rank-" + rank);
    sender.setDaemon(true);
    sender.start();
  }

  @Override
  public void report(
      long step,
      long maxSteps,
      double loss,
      double tokensPerSec,
      double etaSeconds,
      double stepSeconds) {
    LOG.info(
        "{} step {}/{} loss {} tok/s {} ETA {} step time {}s",
        logPrefix,
        step,
        maxSteps,
        String.format("%.4f", loss),
        String.format("%.0f", tokensPerSec),
        ProgressBoard.formatEta(etaSeconds),
        String.format("%.3f", stepSeconds));
    RankProgress p =
        new RankProgress(
            rank, attempt, step, maxSteps, loss, tokensPerSec, etaSeconds, stepSeconds, 0);
    pending.set(p);
    synchronized (this) {
      notifyAll();
    }
  }

  /**
   * Tells the driver, synchronously, why this rank is failing. Called before the task throws, so
   * the driver can report the root cause even if Spark delivers another rank's consequence first.
   */
  public void reportFailure(String why) {
    LOG.error("{} failing: {}", logPrefix, why);
    if (url != null) {
      post(RankProgress.failure(rank, attempt, why));
    }
  }

  private void sendLoop() {
    while (true) {
      RankProgress p = pending.getAndSet(null);
      if (p == null) {
        if (closed) {
          return;
        }
        synchronized (this) {
          try {
            wait(TimeUnit.SECONDS.toMillis(1));
          } catch (InterruptedException e) {
            return;
          }
        }
        continue;
      }
      if (url != null) {
        post(p);
      }
    }
  }

  private void post(RankProgress p) {
    try {
      HttpURLConnection c = (HttpURLConnection) url.toURL().openConnection();
      c.setConnectTimeout(TIMEOUT_MILLIS);
      c.setReadTimeout(TIMEOUT_MILLIS);
      c.setRequestMethod("POST");
      c.setDoOutput(true);
      c.setRequestProperty("Content-Type", "application/json");
      c.setRequestProperty(ProgressServer.TOKEN_HEADER, token);
      try (OutputStream out = c.getOutputStream()) {
        out.write(JSON.writeValueAsBytes(p));
      }
      int code = c.getResponseCode();
      c.disconnect();
      if (code != 204 && code != 409) {
        throw new IOException("HTTP " + code);
      }
    } catch (IOException e) {
      // Logged sparsely: a driver under GC or a firewalled port must not flood executor logs.
      if (failures++ % 100 == 0) {
        LOG.warn(
            "{} cannot send progress to the driver at {} ({} failures so far): {}",
            logPrefix,
            url,
            failures,
            e.toString());
      }
    }
  }

  /** Sends the last pending report (waiting at most a few seconds) and stops the sender. */
  @Override
  public void close() {
    closed = true;
    synchronized (this) {
      notifyAll();
    }
    try {
      sender.join(TIMEOUT_MILLIS + 1000L);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
