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
 * Executor side of tokenization: reads the pieces of one {@link WorkUnit} in order, tokenizes and
 * chunks each (every piece with its own file's group boundaries: blocks never mix files), and
 * writes their train and validation blocks to the unit's shard files. Each part is written under a
 * temporary name and renamed over the final name, so a retried or speculative attempt replaces the
 * same files instead of adding new ones.
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
    Path root = new Path(cfg.outputRoot());
    FileSystem outFs = HadoopFs.of(root, conf);
    String attempt = attemptTag();
    List<Manifest.ShardEntry> shards = new ArrayList<>();
    Map<String, String> extra =
        u.group() != null
            ? Map.of("group", u.group())
            : Map.of(
                "source_sha256", u.pieces().get(0).sha256(), "source", u.pieces().get(0).path());
    List<WorkUnit.PieceResult> results = new ArrayList<>();
    try (BufferAllocator alloc = ArrowMemory.child("prep:" + u.shardPrefix());
        Writers train = new Writers(alloc, outFs, root, Manifest.TRAIN, u, extra, attempt);
        Writers val = new Writers(alloc, outFs, root, Manifest.VALIDATION, u, extra, attempt)) {
      List<SplitChunker.Stats> stats = new ArrayList<>();
      for (WorkUnit.Piece p : u.pieces()) {
        stats.add(tokenize(p, tok, conf, train, val));
      }
      train.finish(shards);
      val.finish(shards);
      long tokens = 0;
      for (int i = 0; i < u.pieces().size(); i++) {
        WorkUnit.Piece p = u.pieces().get(i);
        SplitChunker.Stats st = stats.get(i);
        List<String> holding = new ArrayList<>(train.shardsOf(p.path()));
        holding.addAll(val.shardsOf(p.path()));
        results.add(
            new WorkUnit.PieceResult(
                p.path(),
                p.splitIndex(),
                st.lines(),
                st.tokens(),
                st.blocks(),
                st.droppedTokens(),
                st.bytesRead(),
                List.copyOf(holding)));
        tokens += st.tokens();
      }
      tokensDone.add(tokens);
      unitsDone.add(1);
      return new WorkUnit.Result(u.shardPrefix(), List.copyOf(results), List.copyOf(shards));
    }
  }

  private SplitChunker.Stats tokenize(
      WorkUnit.Piece p, TextTokenizer tok, Configuration conf, Writers train, Writers val)
      throws IOException {
    Path src = new Path(p.path());
    FileSystem inFs = HadoopFs.of(src, conf);
    FileStatus st = inFs.getFileStatus(src);
    if (st.getLen() != p.fileSize() || st.getModificationTime() != p.mtime()) {
      throw new IOException(
          p.path() + " changed after it was listed (size/mtime differ); re-run prep");
    }
    try (FSDataInputStream raw = inFs.open(src)) {
      raw.seek(p.range().startByte());
      InputStream in = raw;
      return SplitChunker.run(
          in,
          p.range(),
          cfg.chunking(),
          cfg.blockSize(),
          cfg.maxLineBytes(),
          tok::encode,
          cfg.bos(),
          cfg.eos(),
          (block, unit) -> {
            boolean v = ValidationSplit.isValidation(p.sha256(), unit, cfg.validationFraction());
            (v ? val : train).write(block, p.path());
          },
          progress(p.estimatedBytes()));
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

  /**
   * The shard parts of one split (train or validation) of one unit, created on first block; it
   * records which sources each part holds, for the manifest.
   */
  private final class Writers implements AutoCloseable {
    private final BufferAllocator alloc;
    private final FileSystem fs;
    private final Path root;
    private final String split;
    private final WorkUnit unit;
    private final Map<String, String> extra;
    private final String attempt;
    private final Map<Integer, java.util.LinkedHashSet<String>> sourcesOfPart =
        new java.util.TreeMap<>();
    private RollingShardWriter<int[]> writer;

    Writers(
        BufferAllocator alloc,
        FileSystem fs,
        Path root,
        String split,
        WorkUnit unit,
        Map<String, String> extra,
        String attempt) {
      this.alloc = alloc;
      this.fs = fs;
      this.root = root;
      this.split = split;
      this.unit = unit;
      this.extra = extra;
      this.attempt = attempt;
    }

    String rel(int part) {
      return String.format(
          Locale.ROOT, "%s/%s/%s-p%03d.arrow", cfg.shardDir(), split, unit.shardPrefix(), part);
    }

    Path tmp(int part) {
      Path f = new Path(root, rel(part));
      return new Path(f.getParent(), "." + f.getName() + ".tmp-" + attempt);
    }

    void write(int[] block, String source) throws IOException {
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
                alloc, meta, cfg.shardRows(), new HadoopPartStore(fs, root, this::rel, this::tmp));
      }
      sourcesOfPart
          .computeIfAbsent(writer.currentPart(), k -> new java.util.LinkedHashSet<>())
          .add(source);
      writer.write(block);
    }

    /** Commits the last part and adds every part's entry to {@code out}. */
    void finish(List<Manifest.ShardEntry> out) throws IOException {
      if (writer == null) {
        return;
      }
      for (RollingShardWriter.Part p : writer.finish()) {
        out.add(
            new Manifest.ShardEntry(
                rel(p.part()),
                split,
                p.rows(),
                p.bytes(),
                p.sha256(),
                List.copyOf(sourcesOfPart.get(p.part()))));
      }
    }

    /** The parts holding blocks of {@code source}, in part order. */
    List<String> shardsOf(String source) {
      List<String> out = new ArrayList<>();
      sourcesOfPart.forEach(
          (part, sources) -> {
            if (sources.contains(source)) {
              out.add(rel(part));
            }
          });
      return out;
    }

    @Override
    public void close() {
      if (writer != null) {
        writer.close();
      }
    }
  }
}
