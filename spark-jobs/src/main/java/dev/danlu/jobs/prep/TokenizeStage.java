package dev.danlu.jobs.prep;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.shard.RollingShardWriter;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.util.LongAccumulator;
import org.apache.spark.util.SerializableConfiguration;

/**
 * Spark job 2 of prep: tokenize the planned file splits into shards. Splits are packed into tasks;
 * large runs are submitted in waves so each job's description can carry progress.
 */
final class TokenizeStage {
  private TokenizeStage() {}

  static List<WorkUnit.Result> run(
      JavaSparkContext jsc,
      PrepOptions o,
      TokenizerInfo tok,
      Manifest.Params params,
      List<WorkUnit> units,
      int files,
      long bytesToTokenize,
      PrintStream console) {
    List<WorkUnit.Result> results = List.of();
    Configuration conf = jsc.hadoopConfiguration();
    Path outRoot = new Path(o.output());
    if (!units.isEmpty()) {
      jsc.addFile(tok.shipFile().toString());
      units.sort(Comparator.comparingLong(WorkUnit::estimatedBytes).reversed());
      SplitTask.Config cfg =
          new SplitTask.Config(
              outRoot.toString(),
              ShardNames.dir(params),
              tok.shipFile().getFileName().toString(),
              tok.sha256(),
              tok.bosId(),
              tok.eosId(),
              o.blockSize(),
              o.chunking(),
              o.validationFraction(),
              o.maxLineBytes(),
              RollingShardWriter.rowsForTargetBytes(o.shardBytes(), o.blockSize()));
      LongAccumulator tBytes = jsc.sc().longAccumulator("prep bytes tokenized");
      LongAccumulator tTokens = jsc.sc().longAccumulator("prep tokens");
      LongAccumulator tUnits = jsc.sc().longAccumulator("prep units done");
      SplitTask task = new SplitTask(cfg, tBytes, tTokens, tUnits);
      SerializableConfiguration sconf = new SerializableConfiguration(conf);
      long unitBytes = units.stream().mapToLong(WorkUnit::estimatedBytes).sum();
      String header =
          String.format(
              Locale.ROOT,
              "danlu prep 2/2: tokenize %d files (%.1f MB) in %d units -> %s",
              files,
              bytesToTokenize / 1048576.0,
              units.size(),
              o.output());
      try (ProgressReporter pr =
          new ProgressReporter(
              "tokenize",
              console,
              o.progressSeconds(),
              tBytes,
              tTokens,
              tUnits,
              unitBytes,
              units.size())) {
        List<List<WorkUnit>> tasks = packTasks(units, jsc.defaultParallelism());
        // Large runs go in waves of Spark jobs, so the job description in the Spark UI (fixed
        // when a job is submitted) can say how far the run is and how fast it goes.
        int wave = Math.max(4 * jsc.defaultParallelism(), (tasks.size() + 7) / 8);
        int waves = (tasks.size() + wave - 1) / wave;
        List<WorkUnit.Result> all = new ArrayList<>();
        for (int w = 0; w < waves; w++) {
          List<List<WorkUnit>> batch =
              tasks.subList(w * wave, Math.min(tasks.size(), (w + 1) * wave));
          jsc.setJobGroup(
              "danlu-prep",
              waves == 1
                  ? header
                  : header + " | wave " + (w + 1) + "/" + waves + ": " + pr.summary(),
              true);
          all.addAll(
              jsc.parallelize(batch, batch.size())
                  .flatMap(
                      units1 -> {
                        List<WorkUnit.Result> rs = new ArrayList<>();
                        for (WorkUnit u : units1) {
                          rs.add(task.run(u, sconf.value()));
                        }
                        return rs.iterator();
                      })
                  .collect());
        }
        results = all;
        console.println(pr.line());
      }
      jsc.clearJobGroup();
    }

    return results;
  }

  /**
   * Groups units into Spark tasks. Units are already sized by bytes (a big file's split, or a part
   * of a packing group), so this mostly balances the load. Units go, largest first, to the least
   * loaded of {@code n} tasks (LPT), with {@code n} = the larger of 4 tasks per core and one task
   * per 64 MB of input (so progress and retries stay fine-grained), at most one per unit.
   */
  static List<List<WorkUnit>> packTasks(List<WorkUnit> units, int cores) {
    long total = units.stream().mapToLong(WorkUnit::estimatedBytes).sum();
    int n = (int) Math.min(units.size(), Math.max(4L * cores, total / (64L << 20) + 1));
    List<List<WorkUnit>> tasks = new ArrayList<>();
    java.util.PriorityQueue<long[]> load =
        new java.util.PriorityQueue<>(
            Comparator.<long[]>comparingLong(a -> a[0]).thenComparingLong(a -> a[1]));
    for (int i = 0; i < n; i++) {
      tasks.add(new ArrayList<>());
      load.add(new long[] {0, i});
    }
    List<WorkUnit> sorted = new ArrayList<>(units);
    sorted.sort(Comparator.comparingLong(WorkUnit::estimatedBytes).reversed());
    for (WorkUnit u : sorted) {
      long[] least = load.poll();
      tasks.get((int) least[1]).add(u);
      least[0] += u.estimatedBytes();
      load.add(least);
    }
    tasks.sort(
        Comparator.comparingLong(
            (List<WorkUnit> t) -> -t.stream().mapToLong(WorkUnit::estimatedBytes).sum()));
    return tasks;
  }
}
