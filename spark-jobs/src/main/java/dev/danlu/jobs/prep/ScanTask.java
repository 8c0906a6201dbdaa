package dev.danlu.jobs.prep;

import dev.danlu.data.chunk.SourceScan;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.util.LongAccumulator;

/**
 * Executor side of the planning pass: one sequential read per file (hash, UTF-8, NUL, line counts
 * at split boundaries). Failures are returned, not thrown, so the driver can report every
 * unreadable file at once instead of the first one after retries.
 */
final class ScanTask implements Serializable {
  private static final long serialVersionUID = 1L;

  /** The scan of one file, or why it could not be read. */
  record Outcome(InputLister.FileRef file, SourceScan.Result result, String error)
      implements Serializable {}

  private final long splitBytes;
  private final int maxLineBytes;
  private final LongAccumulator bytes;
  private final LongAccumulator files;

  ScanTask(long splitBytes, int maxLineBytes, LongAccumulator bytes, LongAccumulator files) {
    this.splitBytes = splitBytes;
    this.maxLineBytes = maxLineBytes;
    this.bytes = bytes;
    this.files = files;
  }

  Outcome scan(InputLister.FileRef f, Configuration conf) {
    Path p = new Path(f.path());
    try {
      FileSystem fs = HadoopFs.of(p, conf);
      SourceScan.Result r;
      try (InputStream in = fs.open(p)) {
        r = SourceScan.scan(in, splitBytes, maxLineBytes);
      }
      bytes.add(r.size());
      files.add(1);
      if (!r.binary() && r.size() != f.size()) {
        return new Outcome(
            f,
            null,
            "changed while being read (" + f.size() + " bytes listed, " + r.size() + " read)");
      }
      return new Outcome(f, r, null);
    } catch (IOException | RuntimeException | org.apache.hadoop.fs.FSError e) {
      // FSError: Hadoop's local file system wraps read errors (EIO) in an Error.
      return new Outcome(f, null, e.getClass().getSimpleName() + ": " + e.getMessage());
    }
  }
}
