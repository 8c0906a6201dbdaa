package dev.danlu.launch.barrier;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.apache.spark.SparkConf;
import org.junit.jupiter.api.Test;

/** Slots a submission promises: executors × min(cores / task.cpus, GPUs / task GPUs). */
class SlotCounterTest {
  private static SparkConf conf(String... kv) {
    SparkConf c = new SparkConf(false).set("spark.master", "yarn");
    for (int i = 0; i < kv.length; i += 2) {
      c.set(kv[i], kv[i + 1]);
    }
    return c;
  }

  @Test
  void cpuOnlyIsCoresOverTaskCpus() {
    assertEquals(
        12,
        SlotCounter.promisedSlots(
            conf(
                "spark.executor.instances", "3",
                "spark.executor.cores", "8",
                "spark.task.cpus", "2")));
  }

  @Test
  void gpusBoundTheSlotsWhenScarcerThanCores() {
    assertEquals(
        16,
        SlotCounter.promisedSlots(
            conf(
                "spark.executor.instances", "2",
                "spark.executor.cores", "32",
                "spark.task.cpus", "4",
                "spark.executor.resource.gpu.amount", "8",
                "spark.task.resource.gpu.amount", "1")));
    // Half a GPU per task: two ranks share each GPU.
    assertEquals(
        4,
        SlotCounter.promisedSlots(
            conf(
                "spark.executor.instances", "1",
                "spark.executor.cores", "4",
                "spark.executor.resource.gpu.amount", "2",
                "spark.task.resource.gpu.amount", "0.5")));
  }

  @Test
  void unknownWithoutExecutorInstancesOrInLocalMode() {
    assertEquals(-1, SlotCounter.promisedSlots(conf("spark.executor.cores", "4")));
    assertEquals(
        -1,
        SlotCounter.promisedSlots(
            conf("spark.executor.instances", "4").set("spark.master", "local[2]")));
  }
}
