package dev.danlu.launch.demo;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/** The demo's closing summary: per stage its status, wall time and where its output went. */
public final class StageTable {
  /** One finished (or skipped) stage. */
  public record Row(String stage, String status, double seconds, String output) {}

  private final List<Row> rows = new ArrayList<>();

  public void add(String stage, String status, double seconds, String output) {
    rows.add(new Row(stage, status, seconds, output));
  }

  public List<Row> rows() {
    return List.copyOf(rows);
  }

  public double totalSeconds() {
    return rows.stream().mapToDouble(Row::seconds).sum();
  }

  /** A fixed-width table; the status column says "done", "reused", "skipped" or "FAILED". */
  public void print(PrintStream out) {
    int w1 = "stage".length();
    int w2 = "status".length();
    for (Row r : rows) {
      w1 = Math.max(w1, r.stage().length());
      w2 = Math.max(w2, r.status().length());
    }
    String fmt = "  %-" + w1 + "s  %-" + w2 + "s  %7s  %s%n";
    out.printf(fmt, "stage", "status", "seconds", "output");
    for (Row r : rows) {
      out.printf(fmt, r.stage(), r.status(), String.format("%.1f", r.seconds()), r.output());
    }
    out.printf(fmt, "total", "", String.format("%.1f", totalSeconds()), "");
  }
}
