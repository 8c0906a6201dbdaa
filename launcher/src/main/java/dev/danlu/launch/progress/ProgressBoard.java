package dev.danlu.launch.progress;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The driver's view of training: the newest report of every rank plus the loss curve. Reports from
 * an older launcher attempt are dropped, so a retried stage never mixes with the killed one. Read
 * by the console line, the metrics source and the UI page; written by the progress endpoint.
 */
public final class ProgressBoard {
  /** The whole-job summary shown to operators. */
  public record Summary(
      int attempt,
      int ranksReporting,
      int worldSize,
      long step,
      long maxSteps,
      double loss,
      double tokensPerSec,
      double etaSeconds,
      double slowestStepSeconds,
      int slowestRank) {
    /** One line for the console and the job description. */
    public String line() {
      if (ranksReporting == 0) {
        return String.format(
            "attempt %d: waiting for the first report of %d ranks", attempt + 1, worldSize);
      }
      return String.format(
          "attempt %d: step %d/%d loss %s %.0f tok/s ETA %s (%d/%d ranks; slowest rank %d"
              + " %.2fs/step)",
          attempt + 1,
          step,
          maxSteps,
          Double.isNaN(loss) ? "?" : String.format("%.4f", loss),
          tokensPerSec,
          formatEta(etaSeconds),
          ranksReporting,
          worldSize,
          slowestRank,
          slowestStepSeconds);
    }
  }

  /** A point of the loss curve: the mean loss over ranks at an optimizer step. */
  public record LossPoint(long step, double loss) {}

  private static final int MAX_CURVE_POINTS = 20_000;

  private final int worldSize;
  private int attempt;
  private final Map<Integer, RankProgress> latest = new TreeMap<>();
  private final Map<Integer, String> failures = new TreeMap<>();
  private final TreeMap<Long, double[]> lossSums = new TreeMap<>(); // step → {sum, count}
  private long updates;

  public ProgressBoard(int worldSize) {
    this.worldSize = worldSize;
  }

  /** A new launcher attempt starts: forget the ranks of the old one (the curve stays). */
  public synchronized void startAttempt(int attempt) {
    this.attempt = attempt;
    latest.clear();
    failures.clear();
  }

  /** Failures the ranks of the current attempt reported themselves, as "rank r: cause". */
  public synchronized List<String> failures() {
    List<String> out = new java.util.ArrayList<>();
    failures.forEach((rank, why) -> out.add("rank " + rank + " reported: " + why));
    return out;
  }

  /** Records a report; returns false if it belongs to another attempt or an unknown rank. */
  public synchronized boolean record(RankProgress p) {
    if (p.attempt() != attempt || p.rank() < 0 || p.rank() >= worldSize) {
      return false;
    }
    if (p.failure() != null) {
      failures.putIfAbsent(p.rank(), p.failure());
      return true;
    }
    RankProgress old = latest.get(p.rank());
    if (old != null && old.step() > p.step()) {
      return false; // reordered delivery: keep the newer step
    }
    latest.put(p.rank(), p);
    if (!Double.isNaN(p.loss())) {
      double[] acc = lossSums.computeIfAbsent(p.step(), s -> new double[2]);
      if (old == null || old.step() != p.step()) {
        acc[0] += p.loss();
        acc[1] += 1;
      }
      while (lossSums.size() > MAX_CURVE_POINTS) {
        lossSums.pollFirstEntry();
      }
    }
    updates++;
    return true;
  }

  /** Number of accepted reports so far (tests and the console use it to see change). */
  public synchronized long updates() {
    return updates;
  }

  public int worldSize() {
    return worldSize;
  }

  public synchronized List<RankProgress> ranks() {
    return new ArrayList<>(latest.values());
  }

  public synchronized List<LossPoint> lossCurve() {
    List<LossPoint> out = new ArrayList<>(lossSums.size());
    lossSums.forEach((step, acc) -> out.add(new LossPoint(step, acc[0] / acc[1])));
    return out;
  }

  /**
   * The job's position is the slowest rank's step (data-parallel ranks move in lockstep, so a rank
   * behind is the news); throughput is the sum over ranks; ETA the largest.
   */
  public synchronized Summary summary() {
    if (latest.isEmpty()) {
      return new Summary(attempt, 0, worldSize, 0, 0, Double.NaN, 0, Double.NaN, 0, -1);
    }
    long step = Long.MAX_VALUE;
    long maxSteps = 0;
    double lossSum = 0;
    int lossCount = 0;
    double tps = 0;
    double eta = Double.NaN; // unknown until some rank knows
    double slowest = -1;
    int slowestRank = -1;
    for (RankProgress p : latest.values()) {
      step = Math.min(step, p.step());
      maxSteps = Math.max(maxSteps, p.maxSteps());
      if (!Double.isNaN(p.loss())) {
        lossSum += p.loss();
        lossCount++;
      }
      tps += p.tokensPerSec();
      if (!Double.isNaN(p.etaSeconds())) {
        eta = Double.isNaN(eta) ? p.etaSeconds() : Math.max(eta, p.etaSeconds());
      }
      if (p.stepSeconds() > slowest) {
        slowest = p.stepSeconds();
        slowestRank = p.rank();
      }
    }
    return new Summary(
        attempt,
        latest.size(),
        worldSize,
        step,
        maxSteps,
        lossCount == 0 ? Double.NaN : lossSum / lossCount,
        tps,
        eta,
        slowest,
        slowestRank);
  }

  static String formatEta(double seconds) {
    if (Double.isNaN(seconds) || seconds < 0 || Double.isInfinite(seconds)) {
      return "?";
    }
    long s = Math.round(seconds);
    return String.format("%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
  }
}
