package dev.danlu.launch.progress;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.launch.ProgressReporter;
import dev.danlu.train.recipe.ProgressListener;
import java.io.IOException;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The executor side of live progress: {@link #report} logs a rank-prefixed line and queues the
 * report for a daemon thread that POSTs what has queued up to the driver as one {@link
 * ProgressBatch}, so the driver's curves get every step even when steps are faster than the
 * network. Training never waits for the network: the queue is bounded (the oldest steps are dropped
 * first, events never before {@value #MAX_QUEUED} of them), and a driver that does not answer costs
 * a log line, not a failed rank.
 */
public final class HttpProgressReporter implements ProgressReporter, AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(HttpProgressReporter.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int TIMEOUT_MILLIS = 5_000;
  static final int MAX_QUEUED = 20_000;
  static final int MAX_PER_POST = 2_000;

  private final URI url;
  private final String token;
  private final int rank;
  private final int attempt;
  private final String logPrefix;
  private final ArrayDeque<RankProgress> steps = new ArrayDeque<>();
  private final ArrayDeque<TrainingEvent> events = new ArrayDeque<>();
  private final Thread sender;
  private volatile boolean closed;
  private long failures;
  private long dropped;

  /**
   * @param url the driver endpoint, or null to only log (e.g. when the endpoint is disabled)
   * @param attempt the launcher attempt, 1 for the first
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
    queue(
        new RankProgress(
            rank, attempt, step, maxSteps, loss, tokensPerSec, etaSeconds, stepSeconds, 0));
  }

  @Override
  public void step(ProgressListener.StepStats s) {
    queue(
        new RankProgress(
            rank,
            attempt,
            s.step(),
            s.maxSteps(),
            s.loss(),
            s.tokensPerSec(),
            s.etaSeconds(),
            s.stepSeconds(),
            0,
            null,
            s.lr(),
            s.gradNorm(),
            s.lossScale(),
            s.skipped()));
  }

  @Override
  public void event(String kind, long step, String text, double value) {
    LOG.info("{} {} at step {}: {}", logPrefix, kind, step, text);
    synchronized (this) {
      events.add(new TrainingEvent(kind, attempt, step, 0, text, value));
      notifyAll();
    }
  }

  private void queue(RankProgress p) {
    LOG.info(
        "{} step {}/{} loss {} tok/s {} ETA {} step time {}s",
        logPrefix,
        p.step(),
        p.maxSteps(),
        String.format("%.4f", p.loss()),
        String.format("%.0f", p.tokensPerSec()),
        ProgressBoard.formatEta(p.etaSeconds()),
        String.format("%.3f", p.stepSeconds()));
    synchronized (this) {
      steps.add(p);
      while (steps.size() > MAX_QUEUED) {
        steps.poll();
        dropped++;
      }
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
      post(
          new ProgressBatch(
              rank, attempt, List.of(RankProgress.failure(rank, attempt, why)), null));
    }
  }

  private void sendLoop() {
    while (true) {
      ProgressBatch batch;
      synchronized (this) {
        if (steps.isEmpty() && events.isEmpty()) {
          if (closed) {
            return;
          }
          try {
            wait(TimeUnit.SECONDS.toMillis(1));
          } catch (InterruptedException e) {
            return;
          }
          continue;
        }
        List<RankProgress> s = new ArrayList<>();
        while (!steps.isEmpty() && s.size() < MAX_PER_POST) {
          s.add(steps.poll());
        }
        batch = new ProgressBatch(rank, attempt, s, new ArrayList<>(events));
        events.clear();
      }
      if (url != null) {
        post(batch);
      }
    }
  }

  private void post(ProgressBatch b) {
    try {
      HttpURLConnection c = (HttpURLConnection) url.toURL().openConnection();
      c.setConnectTimeout(TIMEOUT_MILLIS);
      c.setReadTimeout(TIMEOUT_MILLIS);
      c.setRequestMethod("POST");
      c.setDoOutput(true);
      c.setRequestProperty("Content-Type", "application/json");
      c.setRequestProperty(ProgressServer.TOKEN_HEADER, token);
      try (OutputStream out = c.getOutputStream()) {
        out.write(JSON.writeValueAsBytes(b));
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
            "{} cannot send progress to the driver at {} ({} failures so far, {} steps dropped"
                + " from a full queue): {}",
            logPrefix,
            url,
            failures,
            dropped,
            e.toString());
      }
    }
  }

  /** Sends what is queued (waiting at most a few seconds) and stops the sender. */
  @Override
  public void close() {
    closed = true;
    synchronized (this) {
      notifyAll();
    }
    try {
      sender.join(2L * TIMEOUT_MILLIS + 1000L);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
