package dev.danlu.jobs.prep;

import dev.danlu.data.chunk.ChunkingMode;
import dev.danlu.data.chunk.SourceScan;
import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.util.LongAccumulator;
import org.apache.spark.util.SerializableConfiguration;

/**
 * Spark job 1 of prep: scan new or changed files (hash, NUL, UTF-8, split plan). Every unreadable
 * file, and under {@code --utf8 fail} every invalid one, is reported at once, before any
 * tokenization.
 */
final class ScanStage {
  private ScanStage() {}

  static Map<String, SourceScan.Result> run(
      JavaSparkContext jsc, PrepOptions o, List<InputLister.FileRef> toScan, PrintStream console)
      throws IOException {
    Configuration conf = jsc.hadoopConfiguration();
    long splitBytes = o.chunking() == ChunkingMode.FILE ? Long.MAX_VALUE : o.splitBytes();
    Map<String, SourceScan.Result> scans = new HashMap<>();
    if (toScan.isEmpty()) {
      return scans;
    }
    long scanBytes = toScan.stream().mapToLong(InputLister.FileRef::size).sum();
    LongAccumulator sBytes = jsc.sc().longAccumulator("prep scan bytes");
    LongAccumulator sFiles = jsc.sc().longAccumulator("prep scan files");
    jsc.setJobGroup(
        "danlu-prep",
        String.format(
            Locale.ROOT,
            "danlu prep 1/2: scan %d files (%.1f MB): hash, UTF-8, split plan",
            toScan.size(),
            scanBytes / 1048576.0),
        true);
    ScanTask task = new ScanTask(splitBytes, o.maxLineBytes(), sBytes, sFiles);
    SerializableConfiguration sconf = new SerializableConfiguration(conf);
    int slices = Math.max(1, Math.min(toScan.size(), jsc.defaultParallelism() * 4));
    List<ScanTask.Outcome> outcomes;
    try (ProgressReporter pr =
        new ProgressReporter(
            "scan", console, o.progressSeconds(), sBytes, null, sFiles, scanBytes, toScan.size())) {
      outcomes = jsc.parallelize(toScan, slices).map(f -> task.scan(f, sconf.value())).collect();
    }
    List<String> errors = new ArrayList<>();
    for (ScanTask.Outcome oc : outcomes) {
      if (oc.error() != null) {
        errors.add(oc.file().path() + ": " + oc.error());
      } else {
        scans.put(oc.file().path(), oc.result());
      }
    }
    if (!errors.isEmpty()) {
      throw new PrepJob.PrepException(
          "cannot read "
              + errors.size()
              + " input file(s); fix permissions or remove them from --input:\n  "
              + String.join("\n  ", errors));
    }
    if (o.utf8().equals("fail")) {
      List<String> bad = new ArrayList<>();
      for (InputLister.FileRef f : toScan) {
        SourceScan.Result r = scans.get(f.path());
        if (!r.binary() && r.firstInvalidUtf8Offset() >= 0) {
          bad.add(
              f.path()
                  + ": invalid UTF-8 at byte offset "
                  + r.firstInvalidUtf8Offset()
                  + " ("
                  + r.utf8Replacements()
                  + " malformed sequences)");
        }
      }
      if (!bad.isEmpty()) {
        throw new PrepJob.PrepException(
            "--utf8 fail: "
                + bad.size()
                + " file(s) are not valid UTF-8; fix or remove them, or pass --utf8 replace:\n  "
                + String.join("\n  ", bad));
      }
    }
    return scans;
  }
}
