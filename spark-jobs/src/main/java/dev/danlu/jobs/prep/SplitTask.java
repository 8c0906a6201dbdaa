package dev.danlu.jobs.prep;

import dev.danlu.data.chunk.ChunkingMode;
import dev.danlu.data.chunk.SplitChunker;
import dev.danlu.data.chunk.ValidationSplit;
import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.shard.RollingShardWriter;
import dev.danlu.data.shard.ShardMeta;
import dev.danlu.data.tokenizer.TextTokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.TaskContext;
import org.apache.spark.util.LongAccumulator;

/**
 * Executor side of tokenization: reads one {@link WorkUnit}, tokenizes and chunks it, and writes
 * its train and validation blocks to shard files named after (path hash, content hash, split,
 * part). Each part is written under a temporary name and renamed over the final name, so a retried
 * or speculative attempt replaces the same files instead of adding new ones.
 */
final class SplitTask implements Serializable {
  private static final long serialVersionUID = 1L;

  /** Everything a task needs besides its unit; shipped once in the closure. */
  record Config(
      String outputRoot,
      String shardDir,
      String tokenizerShipName,
      String tokenizerSha256,
      int bos,
      int eos,
      int blockSize,
      ChunkingMode chunking,
      double validationFraction,
      int maxLineBytes,
      long shardRows)
      implements Serializable {}

  private final Config cfg;
  private final LongAccumulator bytesDone;
  private final LongAccumulator tokensDone;
  private final LongAccumulator unitsDone;

  SplitTask(Config cfg, LongAccumulator bytes, LongAccumulator tokens, LongAccumulator units) {
    this.cfg = cfg;
    this.bytesDone = bytes;
    this.tokensDone = tokens;
    this.unitsDone = units;
  }

  WorkUnit.Result run(WorkUnit u, Configuration conf) throws IOException {
    TextTokenizer tok = TokenizerCache.get(cfg.tokenizerShipName(), cfg.tokenizerSha256());
    Path src = new Path(u.path());
    FileSystem inFs = HadoopFs.of(src, conf);
    FileStatus st = inFs.getFileStatus(src);
    if (st.getLen() != u.fileSize() || st.getModificationTime() != u.mtime()) {
      throw new IOException(
          u.path() + " changed after it was scanned (size/mtime differ); re-run prep");
    }
    Path root = new Path(cfg.outputRoot());
    FileSystem outFs = HadoopFs.of(root, conf);
    String attempt = attemptTag();
    List<Manifest.ShardEntry> shards = new ArrayList<>();
    Map<String, String> extra = Map.of("source_sha256", u.sha256(), "source", u.path());
    try (BufferAllocator alloc = ArrowMemory.child("prep:" + u.shardPrefix());
        Writers train =
            new Writers(alloc, outFs, conf, root, Manifest.TRAIN, u, extra, attempt, shards);
        Writers val =
            new Writers(alloc, outFs, conf, root, Manifest.VALIDATION, u, extra, attempt, shards);
        FSDataInputStream raw = inFs.open(src)) {
      raw.seek(u.range().startByte());
      InputStream in = raw;
      SplitChunker.Stats stats =
          SplitChunker.run(
              in,
              u.range(),
              cfg.chunking(),
              cfg.blockSize(),
              cfg.maxLineBytes(),
              tok::encode,
              cfg.bos(),
              cfg.eos(),
              (block, unit) -> {
                boolean v =
                    ValidationSplit.isValidation(u.sha256(), unit, cfg.validationFraction());
                (v ? val : train).write(block);
              },
              progress(u.estimatedBytes()));
      train.finish();
      val.finish();
      tokensDone.add(stats.tokens());
      unitsDone.add(1);
      return new WorkUnit.Result(
          u.path(),
          u.splitIndex(),
          stats.lines(),
          stats.tokens(),
          stats.blocks(),
          stats.droppedTokens(),
          stats.bytesRead(),
          List.copyOf(shards));
    }
  }

  /**
   * Progress in bytes of the unit's own range: a task reads past its end to finish its last group,
   * and those bytes belong to the next unit's count.
   */
  private java.util.function.LongConsumer progress(long ownBytes) {
    long[] done = {0};
    return n -> {
      long add = Math.min(n, ownBytes - done[0]);
      if (add > 0) {
        done[0] += add;
        bytesDone.add(add);
      }
    };
  }

  static String attemptTag() {
    TaskContext tc = TaskContext.get();
    return tc == null
        ? java.util.UUID.randomUUID().toString()
        : tc.stageId()
            + "."
            + tc.partitionId()
            + "."
            + tc.attemptNumber()
            + "."
            + tc.taskAttemptId();
  }

  /** The shard parts of one split (train or validation) of one unit, created on first block. */
  private final class Writers implements AutoCloseable {
    private final BufferAllocator alloc;
    private final FileSystem fs;
    private final Configuration conf;
    private final Path root;
    private final String split;
    private final WorkUnit unit;
    private final Map<String, String> extra;
    private final String attempt;
    private final List<Manifest.ShardEntry> out;
    private RollingShardWriter<int[]> writer;

    Writers(
        BufferAllocator alloc,
        FileSystem fs,
        Configuration conf,
        Path root,
        String split,
        WorkUnit unit,
        Map<String, String> extra,
        String attempt,
        List<Manifest.ShardEntry> out) {
      this.alloc = alloc;
      this.fs = fs;
      this.conf = conf;
      this.root = root;
      this.split = split;
      this.unit = unit;
      this.extra = extra;
      this.attempt = attempt;
      this.out = out;
    }

    String rel(int part) {
      return String.format(
          Locale.ROOT, "%s/%s/%s-p%03d.arrow", cfg.shardDir(), split, unit.shardPrefix(), part);
    }

    Path tmp(int part) {
      Path f = new Path(root, rel(part));
      return new Path(f.getParent(), "." + f.getName() + ".tmp-" + attempt);
    }

    void write(int[] block) throws IOException {
      if (writer == null) {
        java.util.Map<String, String> md = new java.util.HashMap<>(extra);
        md.put("split", split);
        ShardMeta meta =
            new ShardMeta(
                cfg.blockSize(),
                cfg.tokenizerSha256(),
                cfg.bos(),
                cfg.eos(),
                ShardMeta.defaultBatchRows(cfg.blockSize()),
                md);
        writer =
            RollingShardWriter.blocks(
                alloc,
                meta,
                cfg.shardRows(),
                new HadoopPartStore(fs, conf, root, this::rel, this::tmp));
      }
      writer.write(block);
    }

    void finish() throws IOException {
      if (writer == null) {
        return;
      }
      for (RollingShardWriter.Part p : writer.finish()) {
        out.add(
            new Manifest.ShardEntry(
                rel(p.part()), split, p.rows(), p.bytes(), p.sha256(), unit.path()));
      }
    }

    @Override
    public void close() {
      if (writer != null) {
        writer.close();
      }
    }
  }
}
