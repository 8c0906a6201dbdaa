package dev.danlu.launch.progress;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The driver's view of training: the newest report of every rank, the per-step curves (loss,
 * learning rate, gradient norm, loss scale, tokens/s) and the events of the run. Reports from
 * another launcher attempt are dropped, so a retried stage never mixes with the killed one. Read by
 * the console line, the metrics source and the UI page; written by the progress endpoint and the
 * launcher — or, in the History Server, rebuilt from the {@link TrainingUpdate}s the live board
 * handed to the event log.
 *
 * <p>Attempts are numbered from 1 everywhere (console, tab, job description, metrics, rank logs).
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
      if (attempt == 0) {
        return "no attempt started yet";
      }
      if (ranksReporting == 0) {
        return String.format(
            "attempt %d: waiting for the first report of %d ranks", attempt, worldSize);
      }
      return String.format(
          "attempt %d: step %d/%d loss %s %.0f tok/s ETA %s (%d/%d ranks; slowest rank %d"
              + " %.2fs/step)",
          attempt,
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

  /** Overflow skips listed one by one; beyond this they are only counted (and marked on charts). */
  static final int MAX_OVERFLOW_EVENTS = 1000;

  private final int worldSize;
  private int attempt;
  private boolean rewind;
  private final Map<Integer, RankProgress> latest = new TreeMap<>();
  private final Map<Integer, String> failures = new TreeMap<>();
  private final StepCurve curve = new StepCurve();
  private final List<TrainingEvent> events = new ArrayList<>();
  private int eventsTaken;
  private long overflows;
  private long updates;
  private long lastReportMillis;
  private boolean finished;

  public ProgressBoard(int worldSize) {
    this.worldSize = worldSize;
  }

  /**
   * Launcher attempt {@code attempt} (1 for the first) starts: forget the ranks of the old one. The
   * curve stays until the new attempt's first report rewinds it to the step it resumed from.
   */
  public synchronized void startAttempt(int attempt) {
    this.attempt = attempt;
    latest.clear();
    failures.clear();
    rewind = true;
    addEvent(
        new TrainingEvent(
            TrainingEvent.ATTEMPT,
            attempt,
            -1,
            System.currentTimeMillis(),
            "attempt " + attempt + " started",
            Double.NaN));
  }

  /** The current attempt, 1 for the first (0 before any). */
  public synchronized int attempt() {
    return attempt;
  }

  /** Failures the ranks of the current attempt reported themselves, as "rank r: cause". */
  public synchronized List<String> failures() {
    List<String> out = new ArrayList<>();
    failures.forEach((rank, why) -> out.add("rank " + rank + " reported: " + why));
    return out;
  }

  /** Records a report; returns false if it belongs to another attempt or an unknown rank. */
  public synchronized boolean record(RankProgress p) {
    if (p.attempt() != attempt || p.rank() < 0 || p.rank() >= worldSize) {
      return false;
    }
    lastReportMillis = Math.max(lastReportMillis, p.receivedAtMillis());
    if (p.failure() != null) {
      if (failures.putIfAbsent(p.rank(), p.failure()) == null) {
        addEvent(
            new TrainingEvent(
                TrainingEvent.RANK_FAILED,
                attempt,
                latest.containsKey(p.rank()) ? latest.get(p.rank()).step() : -1,
                p.receivedAtMillis(),
                "rank " + p.rank() + ": " + p.failure(),
                Double.NaN));
      }
      return true;
    }
    RankProgress old = latest.get(p.rank());
    if (old != null && old.step() >= p.step()) {
      return false; // reordered or repeated delivery: keep the newer step
    }
    latest.put(p.rank(), p);
    boolean first = curve.add(p, rewind);
    rewind = false;
    if (first && p.skipped()) {
      overflows++;
      if (overflows <= MAX_OVERFLOW_EVENTS) {
        addEvent(
            new TrainingEvent(
                TrainingEvent.OVERFLOW,
                attempt,
                p.step(),
                p.receivedAtMillis(),
                "fp16 gradient overflow: optimizer step skipped at loss scale "
                    + formatScale(p.lossScale()),
                p.lossScale()));
      }
    }
    updates++;
    return true;
  }

  /**
   * A rank's event (evaluation, checkpoint, resume) or the launcher's (attempt failed, finished);
   * events of another attempt than the current one are dropped like their reports.
   */
  public synchronized boolean event(TrainingEvent e) {
    if (e.attempt() != attempt) {
      return false;
    }
    if (TrainingEvent.FINISHED.equals(e.kind())) {
      finished = true;
    }
    lastReportMillis = Math.max(lastReportMillis, e.timeMillis());
    addEvent(e);
    updates++;
    return true;
  }

  private void addEvent(TrainingEvent e) {
    events.add(e);
  }

  /** Number of accepted reports and events so far (tests and the console use it to see change). */
  public synchronized long updates() {
    return updates;
  }

  public int worldSize() {
    return worldSize;
  }

  public synchronized List<RankProgress> ranks() {
    return new ArrayList<>(latest.values());
  }

  public synchronized List<TrainingEvent> events() {
    return new ArrayList<>(events);
  }

  /**
   * fp16 overflow skips seen (all of them; the event list keeps the first {@value
   * #MAX_OVERFLOW_EVENTS}).
   */
  public synchronized long overflows() {
    return overflows;
  }

  /** Driver clock of the newest report or event (0: none yet). */
  public synchronized long lastReportMillis() {
    return lastReportMillis;
  }

  /** True once the launcher said training finished. */
  public synchronized boolean finished() {
    return finished;
  }

  public synchronized List<LossPoint> lossCurve() {
    List<LossPoint> out = new ArrayList<>(curve.size());
    for (int i = 0; i < curve.size(); i++) {
      if (!Double.isNaN(curve.loss(i))) {
        out.add(new LossPoint(curve.stepAt(i), curve.loss(i)));
      }
    }
    return out;
  }

  /** Every step of the curve (a copy). */
  public synchronized List<CurvePoint> curve() {
    List<CurvePoint> out = new ArrayList<>(curve.size());
    for (int i = 0; i < curve.size(); i++) {
      out.add(curve.get(i));
    }
    return out;
  }

  /** Runs {@code view} on the curve's columns under the board's lock (rendering reads them all). */
  synchronized <T> T withCurve(java.util.function.Function<StepCurve, T> view) {
    return view.apply(curve);
  }

  /**
   * What changed since the previous call: the curve from its first changed step on, the new events,
   * the ranks' newest reports. The launcher posts it to Spark's listener bus as a {@link
   * TrainingUpdateEvent}, so the event log carries the run and the History Server can {@link
   * #apply} it again.
   */
  public synchronized TrainingUpdate takeUpdate() {
    List<TrainingEvent> newEvents = new ArrayList<>(events.subList(eventsTaken, events.size()));
    eventsTaken = events.size();
    return new TrainingUpdate(
        worldSize,
        attempt,
        curve.takeChanges(),
        newEvents,
        new ArrayList<>(latest.values()),
        overflows,
        lastReportMillis);
  }

  /** Replays an update taken from a live board (the History Server's side). */
  public synchronized void apply(TrainingUpdate u) {
    attempt = u.attempt();
    curve.replaceFrom(u.points());
    events.addAll(u.events());
    eventsTaken = events.size();
    for (TrainingEvent e : u.events()) {
      if (TrainingEvent.FINISHED.equals(e.kind())) {
        finished = true;
      }
    }
    latest.clear();
    for (RankProgress p : u.ranks()) {
      latest.put(p.rank(), p);
    }
    overflows = u.overflows();
    lastReportMillis = Math.max(lastReportMillis, u.lastReportMillis());
    updates++;
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

  static String formatScale(double scale) {
    return scale >= 1 && scale == Math.rint(scale)
        ? Long.toString((long) scale)
        : String.format(java.util.Locale.ROOT, "%.3g", scale);
  }
}
