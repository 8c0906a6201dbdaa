package dev.danlu.jobs.prep;

import java.io.PrintStream;
import java.util.Locale;
import org.apache.spark.util.LongAccumulator;

/**
 * Prints a progress line every few seconds while a stage runs: units done (a big file's split or a
 * part of a packing group), bytes done of the total, throughput in MB/s and tokens/s, and an ETA.
 * Accumulators reach the driver when a task ends, so progress moves unit by unit.
 */
final class ProgressReporter implements AutoCloseable {
  private final String what;
  private final PrintStream out;
  private final LongAccumulator bytes;
  private final LongAccumulator tokens;
  private final LongAccumulator units;
  private final long totalBytes;
  private final long totalUnits;
  private final long startNanos = System.nanoTime();
  private final Thread thread;
  private volatile boolean stop;

  ProgressReporter(
      String what,
      PrintStream out,
      double periodSeconds,
      LongAccumulator bytes,
      LongAccumulator tokens,
      LongAccumulator units,
      long totalBytes,
      long totalUnits) {
    this.what = what;
    this.out = out;
    this.bytes = bytes;
    this.tokens = tokens;
    this.units = units;
    this.totalBytes = totalBytes;
    this.totalUnits = totalUnits;
    this.thread =
        new Thread(
            () -> {
              long periodMs = (long) (periodSeconds * 1000);
              while (!stop) {
                try {
                  Thread.sleep(periodMs);
                } catch (InterruptedException e) {
                  return;
                }
                if (!stop) {
                  out.println(line());
                }
              }
            },
            "danlu-prep-progress");
    thread.setDaemon(true);
    if (periodSeconds > 0) {
      thread.start();
    }
  }

  /** Bytes done, throughput and ETA, for a Spark job description. */
  String summary() {
    double secs = Math.max(1e-3, (System.nanoTime() - startNanos) / 1e9);
    long b = bytes.value();
    return String.format(
        Locale.ROOT,
        "%.1f/%.1f MB done (%.0f%%), %.2f MB/s%s",
        b / 1048576.0,
        totalBytes / 1048576.0,
        totalBytes == 0 ? 100.0 : 100.0 * b / totalBytes,
        b / secs / 1048576.0,
        b > 0 && totalBytes > b
            ? String.format(Locale.ROOT, ", ETA %.0fs", (totalBytes - b) / (b / secs))
            : "");
  }

  /** The current progress line (also used for the final summary). */
  String line() {
    double secs = Math.max(1e-3, (System.nanoTime() - startNanos) / 1e9);
    long b = bytes.value();
    double mbps = b / secs / (1 << 20);
    String eta =
        b > 0 && totalBytes > b
            ? String.format(Locale.ROOT, ", ETA %.0fs", (totalBytes - b) / (b / secs))
            : "";
    String tok =
        tokens == null
            ? ""
            : String.format(
                Locale.ROOT, ", %d tokens (%.0f tokens/s)", tokens.value(), tokens.value() / secs);
    return String.format(
        Locale.ROOT,
        "prep: %s %d/%d %s, %.1f/%.1f MB (%.0f%%), %.2f MB/s%s, %.0fs elapsed%s",
        what,
        units.value(),
        totalUnits,
        what.equals("scan") ? "files" : "units",
        b / 1048576.0,
        totalBytes / 1048576.0,
        totalBytes == 0 ? 100.0 : 100.0 * b / totalBytes,
        mbps,
        tok,
        secs,
        eta);
  }

  @Override
  public void close() {
    stop = true;
    thread.interrupt();
  }
}
