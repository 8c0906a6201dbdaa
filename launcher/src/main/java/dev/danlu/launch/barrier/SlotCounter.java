package dev.danlu.launch.barrier;

import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;

/**
 * How many barrier tasks the cluster can run at once, and a message explaining a shortfall in the
 * terms an operator sizes a cluster with (executors × cores / task.cpus, GPUs per task).
 */
public final class SlotCounter {
  private SlotCounter() {}

  /** Slots of the registered executors, counted the way barrier scheduling counts them. */
  public static int slots(SparkContext sc) {
    return sc.maxNumConcurrentTasks(sc.resourceProfileManager().defaultResourceProfile());
  }

  /**
   * Slots the configuration promises once all requested executors are up, or -1 when it does not
   * say (standalone without {@code spark.executor.instances}: only registered executors count).
   */
  public static int promisedSlots(SparkConf conf) {
    String master = conf.get("spark.master", "");
    if (master.startsWith("local")) {
      return -1; // counted exactly by slots() at once
    }
    int instances = conf.getInt("spark.executor.instances", -1);
    if (instances < 0) {
      return -1;
    }
    return instances * perExecutor(conf);
  }

  public static int perExecutor(SparkConf conf) {
    int cores = conf.getInt("spark.executor.cores", 1);
    int taskCpus = conf.getInt("spark.task.cpus", 1);
    int perExec = cores / Math.max(1, taskCpus);
    double gpuPerTask = conf.getDouble("spark.task.resource.gpu.amount", 0);
    if (gpuPerTask > 0) {
      double gpus = conf.getDouble("spark.executor.resource.gpu.amount", 0);
      perExec = Math.min(perExec, (int) Math.floor(gpus / gpuPerTask + 1e-9));
    }
    return perExec;
  }

  public static String notEnough(SparkContext sc, int worldSize) {
    SparkConf conf = sc.getConf();
    int executors = sc.statusTracker().getExecutorInfos().length - (isLocal(conf) ? 0 : 1);
    return "world size "
        + worldSize
        + " needs "
        + worldSize
        + " barrier slots (one task per rank), but the cluster has "
        + slots(sc)
        + " ("
        + (isLocal(conf)
            ? "master " + conf.get("spark.master")
            : executors
                + " executors × spark.executor.cores="
                + conf.get("spark.executor.cores", "1")
                + " / spark.task.cpus="
                + conf.get("spark.task.cpus", "1")
                + gpuText(conf))
        + "). Lower world_size or ask for more executors/GPUs.";
  }

  private static String gpuText(SparkConf conf) {
    if (!conf.contains("spark.task.resource.gpu.amount")) {
      return "";
    }
    return ", spark.executor.resource.gpu.amount="
        + conf.get("spark.executor.resource.gpu.amount", "0")
        + " / spark.task.resource.gpu.amount="
        + conf.get("spark.task.resource.gpu.amount");
  }

  private static boolean isLocal(SparkConf conf) {
    return conf.get("spark.master", "").startsWith("local");
  }
}
