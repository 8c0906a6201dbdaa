package dev.danlu.launch.progress;

import java.io.PrintStream;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Prints the board's summary line on the driver console every interval when something changed, and
 * at least every ten intervals so a silent job is visibly silent.
 */
public final class ConsoleProgress implements AutoCloseable {
  private final ScheduledExecutorService timer;
  private long lastUpdates = -1;
  private int quiet;

  public ConsoleProgress(ProgressBoard board, PrintStream out, Duration interval) {
    timer =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "danlu-console-progress");
              t.setDaemon(true);
              return t;
            });
    long ms = Math.max(100, interval.toMillis());
    timer.scheduleAtFixedRate(() -> tick(board, out), ms, ms, TimeUnit.MILLISECONDS);
  }

  private synchronized void tick(ProgressBoard board, PrintStream out) {
    long updates = board.updates();
    if (updates != lastUpdates || ++quiet >= 10) {
      out.println("danlu: " + board.summary().line());
      lastUpdates = updates;
      quiet = 0;
    }
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
