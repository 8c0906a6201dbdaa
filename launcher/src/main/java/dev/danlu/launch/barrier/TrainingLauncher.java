package dev.danlu.launch.barrier;

import dev.danlu.launch.JobSecret;
import dev.danlu.launch.progress.ConsoleProgress;
import dev.danlu.launch.progress.ProgressBoard;
import dev.danlu.launch.progress.ProgressServer;
import dev.danlu.launch.progress.TrainingEvent;
import dev.danlu.launch.progress.TrainingMetricsSource;
import dev.danlu.launch.progress.TrainingUiTab;
import dev.danlu.launch.progress.TrainingUpdate;
import dev.danlu.launch.progress.TrainingUpdateEvent;
import java.io.PrintStream;
import java.net.InetAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkEnv;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.ui.SparkUI;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.reflect.ClassTag$;

/**
 * Runs training as a Spark barrier stage, one task per rank, and runs the stage again when it
 * fails. Spark never resubmits a failed barrier ResultStage, so the retry loop lives here, on the
 * driver: each attempt is a new job whose ranks resume from the newest committed checkpoint (see
 * docs/launcher.md for why not the shuffle-stage trick).
 */
public final class TrainingLauncher implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(TrainingLauncher.class);

  /**
   * What to run.
   *
   * @param workClass the {@code RankWork} implementation, created on the executors by name
   * @param slotWait how long to wait for enough barrier slots before each attempt (executors still
   *     registering, or a lost executor being replaced)
   */
  public record Plan(
      String workClass,
      int worldSize,
      int maxAttempts,
      String configYaml,
      String configSource,
      List<String> overrides,
      Duration slotWait,
      Duration progressInterval) {
    public Plan {
      overrides = List.copyOf(overrides);
      if (worldSize < 1 || maxAttempts < 1) {
        throw new IllegalArgumentException("worldSize and maxAttempts must be ≥ 1");
      }
    }
  }

  /** The ranks' summaries (index = rank) and the number of attempts it took. */
  public record Result(List<String> rankSummaries, int attempts) {}

  private final JavaSparkContext jsc;
  private final Plan plan;
  private final PrintStream console;
  private final byte[] secret = JobSecret.generate();
  private final ProgressBoard board;
  private final ProgressServer server;
  private final FailureRecorder recorder = new FailureRecorder();
  private final TrainingMetricsSource metrics;
  private final ConsoleProgress consoleProgress;
  private final java.util.concurrent.ScheduledExecutorService eventLogTimer;
  private TrainingUiTab tab;

  public TrainingLauncher(JavaSparkContext jsc, Plan plan, PrintStream console) throws Exception {
    this.jsc = jsc;
    this.plan = plan;
    this.console = console;
    this.board = new ProgressBoard(plan.worldSize());
    SparkContext sc = jsc.sc();
    String host =
        sc.getConf().get("spark.driver.host", InetAddress.getLocalHost().getHostAddress());
    this.server = new ProgressServer(host, 0, secret, board);
    this.metrics = new TrainingMetricsSource(board);
    SparkEnv.get().metricsSystem().registerSource(metrics);
    attachUiTab(sc);
    sc.addSparkListener(recorder);
    this.consoleProgress = new ConsoleProgress(board, console, plan.progressInterval());
    this.eventLogTimer = startEventLogUpdates(sc);
  }

  /**
   * With {@code spark.eventLog.enabled}, hands what the board learnt to the listener bus every two
   * seconds as a {@link TrainingUpdateEvent}: the event log then carries the curves and events, and
   * the History Server shows the Training tab after the application ended ({@link
   * dev.danlu.launch.progress.TrainingHistoryPlugin}).
   */
  private java.util.concurrent.ScheduledExecutorService startEventLogUpdates(SparkContext sc) {
    if (!sc.getConf().getBoolean("spark.eventLog.enabled", false)) {
      return null;
    }
    java.util.concurrent.ScheduledExecutorService t =
        java.util.concurrent.Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread th = new Thread(r, "danlu-training-eventlog");
              th.setDaemon(true);
              return th;
            });
    t.scheduleWithFixedDelay(this::postUpdate, 2, 2, java.util.concurrent.TimeUnit.SECONDS);
    return t;
  }

  private synchronized void postUpdate() {
    if (eventLogTimer == null) {
      return; // no event log: nobody would read the updates
    }
    TrainingUpdate u = board.takeUpdate();
    if (!u.points().isEmpty() || !u.events().isEmpty()) {
      jsc.sc().listenerBus().post(new TrainingUpdateEvent(u));
    }
  }

  public ProgressBoard board() {
    return board;
  }

  /** Where the tasks send progress: {@code http://driver-host:port/progress}. */
  public String progressUrl() {
    return server.url();
  }

  /** Number of Spark jobs started since this launcher was made (a test hook). */
  public int jobsStarted() {
    return recorder.jobsStarted();
  }

  /** Trains to completion, retrying a failed stage up to {@code maxAttempts} times in all. */
  public Result run() throws TrainingFailedException {
    List<String> history = new ArrayList<>();
    List<String> previousCauses = List.of();
    long previousStep = -1;
    Exception last = null;
    // attempts count from 1 everywhere: console, tab, job description, metrics, rank log prefixes
    for (int attempt = 1; attempt <= plan.maxAttempts(); attempt++) {
      board.startAttempt(attempt);
      waitForSlots();
      recorder.drainExecutorLosses(); // losses before this attempt belong to the previous one
      String what =
          String.format(
              "danlu train %s: %d ranks, attempt %d/%d (progress: Training tab)",
              plan.configSource(), plan.worldSize(), attempt, plan.maxAttempts());
      jsc.setJobGroup(FailureRecorder.GROUP_PREFIX + attempt, what, true);
      console.println("danlu: " + what);
      try {
        String[] out = runStage(attempt);
        String done = "training finished after " + attempt + " attempt(s)";
        console.println("danlu: " + done);
        board.event(
            new TrainingEvent(
                TrainingEvent.FINISHED,
                attempt,
                board.summary().step(),
                System.currentTimeMillis(),
                done,
                Double.NaN));
        postUpdate();
        return new Result(List.of(out), attempt);
      } catch (Exception e) {
        last = e;
      }
      try {
        // The failed task's event may still be queued: let the listener see it first.
        jsc.sc().listenerBus().waitUntilEmpty(10_000);
      } catch (java.util.concurrent.TimeoutException e) {
        LOG.warn("danlu: listener bus still busy; the failure causes may be incomplete");
      }
      // What the ranks said themselves comes first, root causes before their consequences
      // (a rank whose peer died fails too, with a broken pipe or a timeout): Spark keeps only
      // the first task failure it hears of, which may be the consequence.
      List<String> causes = new ArrayList<>(rootCausesFirst(board.failures()));
      causes.addAll(recorder.causes(attempt));
      causes.addAll(recorder.drainExecutorLosses());
      if (causes.isEmpty()) {
        causes.add(String.valueOf(last.getMessage()));
      }
      long step = board.summary().step();
      String line =
          "attempt "
              + attempt
              + " failed at step "
              + step
              + ":\n      "
              + String.join("\n      ", causes);
      history.add(line);
      board.event(
          new TrainingEvent(
              TrainingEvent.ATTEMPT_FAILED,
              attempt,
              step,
              System.currentTimeMillis(),
              String.join("; ", causes),
              Double.NaN));
      postUpdate();
      LOG.warn("danlu: {}", line);
      console.println("danlu: " + line);
      boolean stuck = step <= previousStep && sameRootCauses(causes, previousCauses);
      if (stuck) {
        console.println(
            "danlu: the same failure twice without progress: not retrying a deterministic error");
        break;
      }
      previousCauses = causes;
      previousStep = step;
      if (attempt < plan.maxAttempts()) {
        console.println("danlu: running the stage again; ranks resume from the newest checkpoint");
      }
    }
    throw new TrainingFailedException(
        "training failed after "
            + history.size()
            + " attempt(s) (max_attempts "
            + plan.maxAttempts()
            + "):\n  - "
            + String.join("\n  - ", history),
        last);
  }

  private String[] runStage(int attempt) {
    RankTask task =
        new RankTask(
            plan.workClass(),
            plan.worldSize(),
            attempt,
            secret,
            plan.configYaml(),
            plan.configSource(),
            plan.overrides(),
            server.url(),
            ProgressServer.tokenFor(secret));
    List<Integer> ranks = IntStream.range(0, plan.worldSize()).boxed().collect(Collectors.toList());
    Object collected =
        jsc.parallelize(ranks, plan.worldSize())
            .rdd()
            .barrier()
            .mapPartitions(task, false, ClassTag$.MODULE$.apply(String.class))
            .collect();
    return (String[]) collected;
  }

  /**
   * Barrier mode refuses a stage with more tasks than free slots and, after a lost executor, the
   * replacement takes a few seconds to register; waiting here turns a cryptic scheduler failure
   * into a short pause or a clear message.
   */
  private void waitForSlots() throws TrainingFailedException {
    long deadline = System.nanoTime() + plan.slotWait().toNanos();
    int slots = SlotCounter.slots(jsc.sc());
    boolean told = false;
    while (slots < plan.worldSize() && System.nanoTime() < deadline) {
      if (!told) {
        console.println(
            "danlu: waiting up to "
                + plan.slotWait().toSeconds()
                + "s for "
                + plan.worldSize()
                + " barrier slots ("
                + slots
                + " now)");
        told = true;
      }
      sleep(500);
      slots = SlotCounter.slots(jsc.sc());
    }
    if (slots < plan.worldSize()) {
      throw new TrainingFailedException(SlotCounter.notEnough(jsc.sc(), plan.worldSize()), null);
    }
  }

  /** Orders failures so that those which look like a dead peer's consequence come last. */
  public static List<String> rootCausesFirst(List<String> failures) {
    List<String> roots = new ArrayList<>();
    List<String> consequences = new ArrayList<>();
    for (String f : failures) {
      (looksLikeConsequence(f) ? consequences : roots).add(f);
    }
    roots.addAll(consequences);
    return roots;
  }

  private static boolean looksLikeConsequence(String failure) {
    String f = failure.toLowerCase(java.util.Locale.ROOT);
    return f.contains("broken pipe")
        || f.contains("connection reset")
        || f.contains("socketexception")
        || f.contains("eofexception")
        || f.contains("interrupted")
        || f.contains("closedchannelexception")
        || f.contains("timeout");
  }

  private static boolean sameRootCauses(List<String> a, List<String> b) {
    List<String> ra = roots(a);
    return !ra.isEmpty() && ra.equals(roots(b));
  }

  /** The part after "failed: " of our own RankFailure messages: host and executor ids differ. */
  private static List<String> roots(List<String> causes) {
    String marker = RankFailure.class.getName() + ": ";
    List<String> out = new ArrayList<>();
    for (String c : causes) {
      int k = c.indexOf(marker);
      int i = c.indexOf(") failed: ", Math.max(k, 0));
      if (k >= 0 && i >= 0) {
        int start = k + marker.length(); // "rank R/W (attempt ..."
        out.add(c.substring(start, c.indexOf('/', start)) + c.substring(i));
      }
    }
    out.sort(null);
    return out;
  }

  private void attachUiTab(SparkContext sc) {
    if (sc.ui().isEmpty()) {
      return;
    }
    try {
      SparkUI ui = sc.ui().get();
      TrainingUiTab t = new TrainingUiTab(ui, board);
      ui.attachTab(t);
      tab = t;
    } catch (LinkageError | RuntimeException e) {
      // The tab uses Spark's UI classes directly; another Spark build may differ. Progress
      // still reaches the console and the metrics.
      LOG.warn("danlu: cannot add the Training tab to the Spark UI: {}", e.toString());
    }
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while waiting for barrier slots", e);
    }
  }

  @Override
  public void close() {
    if (eventLogTimer != null) {
      eventLogTimer.shutdownNow();
    }
    postUpdate(); // what the last tick did not take: the event log must end complete
    consoleProgress.close();
    server.close();
    jsc.sc().removeSparkListener(recorder);
    if (tab != null && jsc.sc().ui().isDefined()) {
      jsc.sc().ui().get().detachTab(tab);
    }
    SparkEnv env = SparkEnv.get();
    if (env != null) {
      env.metricsSystem().removeSource(metrics);
    }
  }
}
