package dev.danlu.train.serve;

import java.util.ArrayDeque;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * The server's counters in Prometheus text exposition format ({@code GET /metrics}): requests by
 * endpoint and status, prompt and generated tokens, queue depth and active sequences, time to first
 * token as a histogram, and generated tokens per second over the last {@link #WINDOW_SECONDS}.
 */
public final class Metrics {
  static final int WINDOW_SECONDS = 10;

  /** Upper bounds (seconds) of the time-to-first-token histogram's buckets. */
  static final double[] TTFT_BUCKETS = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

  private final Map<String, LongAdder> requests = new TreeMap<>();
  final LongAdder promptTokens = new LongAdder();
  final LongAdder generatedTokens = new LongAdder();
  final LongAdder decodeSteps = new LongAdder();
  final LongAdder decodeRows = new LongAdder();
  final LongAdder cancelled = new LongAdder();
  final AtomicLong queued = new AtomicLong();
  final AtomicLong active = new AtomicLong();
  private final long[] ttftCounts = new long[TTFT_BUCKETS.length + 1];
  private double ttftSum;
  private long ttftCount;
  private final ArrayDeque<long[]> window = new ArrayDeque<>(); // {nanos, tokens}

  /** One answered request. */
  public void request(String endpoint, int status) {
    String key = "endpoint=\"" + endpoint + "\",code=\"" + status + "\"";
    LongAdder a;
    synchronized (requests) {
      a = requests.computeIfAbsent(key, k -> new LongAdder());
    }
    a.increment();
  }

  synchronized void firstToken(double seconds) {
    int i = 0;
    while (i < TTFT_BUCKETS.length && seconds > TTFT_BUCKETS[i]) {
      i++;
    }
    ttftCounts[i]++;
    ttftSum += seconds;
    ttftCount++;
  }

  /** {@code tokens} generated at {@code nanos} (one engine step). */
  synchronized void generated(long nanos, int tokens) {
    generatedTokens.add(tokens);
    window.addLast(new long[] {nanos, tokens});
    trim(nanos);
  }

  private void trim(long now) {
    long from = now - WINDOW_SECONDS * 1_000_000_000L;
    while (!window.isEmpty() && window.peekFirst()[0] < from) {
      window.removeFirst();
    }
  }

  /** Generated tokens per second over the last {@link #WINDOW_SECONDS} seconds. */
  public synchronized double tokensPerSecond() {
    trim(System.nanoTime());
    long sum = 0;
    for (long[] e : window) {
      sum += e[1];
    }
    return (double) sum / WINDOW_SECONDS;
  }

  public long activeSequences() {
    return active.get();
  }

  public long queuedSequences() {
    return queued.get();
  }

  public long cancelledSequences() {
    return cancelled.sum();
  }

  /** The exposition text. */
  public String render() {
    StringBuilder sb = new StringBuilder();
    help(
        sb,
        "danlu_serve_requests_total",
        "counter",
        "HTTP requests answered, by endpoint and status");
    synchronized (requests) {
      for (Map.Entry<String, LongAdder> e : requests.entrySet()) {
        sb.append("danlu_serve_requests_total{")
            .append(e.getKey())
            .append("} ")
            .append(e.getValue().sum())
            .append('\n');
      }
    }
    metric(
        sb,
        "danlu_serve_prompt_tokens_total",
        "counter",
        "Prompt tokens prefilled",
        promptTokens.sum());
    metric(
        sb,
        "danlu_serve_generated_tokens_total",
        "counter",
        "Tokens generated",
        generatedTokens.sum());
    metric(
        sb, "danlu_serve_decode_steps_total", "counter", "Batched decode steps", decodeSteps.sum());
    metric(
        sb,
        "danlu_serve_decode_rows_total",
        "counter",
        "Sequences summed over decode steps (rows / steps = mean batch)",
        decodeRows.sum());
    metric(
        sb,
        "danlu_serve_cancelled_sequences_total",
        "counter",
        "Sequences ended early because the client went away",
        cancelled.sum());
    metric(sb, "danlu_serve_queue_depth", "gauge", "Sequences waiting for a slot", queued.get());
    metric(sb, "danlu_serve_active_sequences", "gauge", "Sequences holding a slot", active.get());
    help(
        sb,
        "danlu_serve_tokens_per_second",
        "gauge",
        "Generated tokens per second over the last " + WINDOW_SECONDS + " s");
    sb.append("danlu_serve_tokens_per_second ").append(tokensPerSecond()).append('\n');
    help(
        sb,
        "danlu_serve_time_to_first_token_seconds",
        "histogram",
        "From request accepted to first generated token");
    synchronized (this) {
      long cum = 0;
      for (int i = 0; i < TTFT_BUCKETS.length; i++) {
        cum += ttftCounts[i];
        sb.append("danlu_serve_time_to_first_token_seconds_bucket{le=\"")
            .append(TTFT_BUCKETS[i])
            .append("\"} ")
            .append(cum)
            .append('\n');
      }
      cum += ttftCounts[TTFT_BUCKETS.length];
      sb.append("danlu_serve_time_to_first_token_seconds_bucket{le=\"+Inf\"} ")
          .append(cum)
          .append('\n');
      sb.append("danlu_serve_time_to_first_token_seconds_sum ").append(ttftSum).append('\n');
      sb.append("danlu_serve_time_to_first_token_seconds_count ").append(ttftCount).append('\n');
    }
    return sb.toString();
  }

  private static void help(StringBuilder sb, String name, String type, String help) {
    sb.append("# HELP ").append(name).append(' ').append(help).append('\n');
    sb.append("# TYPE ").append(name).append(' ').append(type).append('\n');
  }

  private static void metric(StringBuilder sb, String name, String type, String help, long v) {
    help(sb, name, type, help);
    sb.append(name).append(' ').append(v).append('\n');
  }
}
