package dev.danlu.launch.barrier;

import java.util.ArrayList;
import java.util.List;
import org.apache.spark.ExceptionFailure;
import org.apache.spark.ExecutorLostFailure;
import org.apache.spark.Success$;
import org.apache.spark.TaskEndReason;
import org.apache.spark.TaskFailedReason;
import org.apache.spark.TaskKilled;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerExecutorRemoved;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.TaskInfo;

/**
 * Collects why barrier tasks of the training stage ended badly, so the driver can name the real
 * cause. Spark kills every other task of a barrier stage when one fails; those kills are the
 * consequence, not the cause, and are skipped.
 */
final class FailureRecorder extends SparkListener {
  /** Job group id prefix of training attempts: {@code danlu-train-a<attempt>}. */
  static final String GROUP_PREFIX = "danlu-train-a";

  private final java.util.Map<Integer, Integer> attemptOfStage = new java.util.HashMap<>();
  private final java.util.Map<Integer, List<String>> causes = new java.util.HashMap<>();
  private final List<String> executorLosses = new ArrayList<>();
  private int jobsStarted;

  @Override
  public synchronized void onJobStart(SparkListenerJobStart jobStart) {
    jobsStarted++;
    String group =
        jobStart.properties() == null
            ? null
            : jobStart.properties().getProperty("spark.jobGroup.id");
    if (group != null && group.startsWith(GROUP_PREFIX)) {
      int attempt = Integer.parseInt(group.substring(GROUP_PREFIX.length()));
      scala.jdk.javaapi.CollectionConverters.asJava(jobStart.stageIds())
          .forEach(id -> attemptOfStage.put((Integer) id, attempt));
    }
  }

  synchronized int jobsStarted() {
    return jobsStarted;
  }

  @Override
  public synchronized void onTaskEnd(SparkListenerTaskEnd end) {
    TaskEndReason reason = end.reason();
    if (reason == Success$.MODULE$ || reason instanceof TaskKilled) {
      return;
    }
    Integer attempt = attemptOfStage.get(end.stageId());
    if (attempt == null) {
      return; // not a training stage
    }
    TaskInfo info = end.taskInfo();
    String who =
        "rank "
            + info.index()
            + " (stage "
            + end.stageId()
            + "."
            + end.stageAttemptId()
            + ", executor "
            + info.executorId()
            + " on "
            + info.host()
            + ")";
    String what;
    if (reason instanceof ExceptionFailure ef) {
      what = ef.className() + ": " + ef.description();
    } else if (reason instanceof ExecutorLostFailure lost) {
      what =
          "executor lost"
              + (lost.reason().isDefined() ? ": " + lost.reason().get() : "")
              + (lost.exitCausedByApp() ? "" : " (not caused by the task)");
    } else if (reason instanceof TaskFailedReason failed) {
      what = failed.toErrorString();
    } else {
      what = reason.toString();
    }
    causes.computeIfAbsent(attempt, a -> new ArrayList<>()).add(who + ": " + what);
  }

  @Override
  public synchronized void onExecutorRemoved(SparkListenerExecutorRemoved removed) {
    executorLosses.add("executor " + removed.executorId() + " removed: " + removed.reason());
  }

  /** Causes recorded for the stages of launcher attempt {@code attempt}, oldest first. */
  synchronized List<String> causes(int attempt) {
    return new ArrayList<>(causes.getOrDefault(attempt, List.of()));
  }

  synchronized List<String> drainExecutorLosses() {
    List<String> out = new ArrayList<>(executorLosses);
    executorLosses.clear();
    return out;
  }
}
