package dev.danlu.jobs.prep;

import dev.danlu.data.chunk.ValidationSplit;
import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.sft.SftCounts;
import dev.danlu.data.sft.SftExampleBuilder;
import dev.danlu.data.sft.SftExamples;
import dev.danlu.data.sft.SftFormatException;
import dev.danlu.data.sft.SftRecordReader;
import dev.danlu.data.sft.SftShardMeta;
import dev.danlu.data.sft.SftShardWriter;
import dev.danlu.data.shard.RollingShardWriter;
import dev.danlu.data.tokenizer.TextTokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Executor side of {@code prep-sft}: one input file → its train and validation SFT shards. The file
 * is read twice: once for its content sha256 (which names the shards and seeds the validation
 * split), then parsed record by record. A bad record fails the file (the result carries the error,
 * nothing of it is referenced) unless bad records are skipped.
 */
final class SftFileTask implements Serializable {
  private static final long serialVersionUID = 1L;
  static final int MAX_BAD_MESSAGES = 10;

  /** Everything a task needs besides its file. */
  record Config(
      String outputRoot,
      String shardDir,
      String tokenizerShipName,
      String tokenizerSha256,
      int bos,
      int eos,
      int pad,
      int maxSeqLength,
      double validationFraction,
      boolean skipBadRecords,
      long shardRows,
      boolean pairs)
      implements Serializable {}

  /** One file to prepare; {@code role} {@code train} or {@code validation}. */
  record Unit(String path, long size, long mtime, String role) implements Serializable {}

  /**
   * What a file gave.
   *
   * @param error a fatal error (bad record without --skip-bad-records, invalid JSON in an array)
   */
  record Result(
      Unit unit,
      String sha256,
      SftCounts counts,
      long trainRows,
      long validationRows,
      List<Manifest.ShardEntry> shards,
      List<String> badRecords,
      String error)
      implements Serializable {}

  private final Config cfg;

  SftFileTask(Config cfg) {
    this.cfg = cfg;
  }

  Result run(Unit u, Configuration conf) throws IOException {
    TextTokenizer tok = TokenizerCache.get(cfg.tokenizerShipName(), cfg.tokenizerSha256());
    Path src = new Path(u.path());
    FileSystem inFs = HadoopFs.of(src, conf);
    FileStatus st = inFs.getFileStatus(src);
    if (st.getLen() != u.size() || st.getModificationTime() != u.mtime()) {
      throw new IOException(u.path() + " changed after it was listed; re-run prep-sft");
    }
    String sha = sha256(inFs, src);
    String prefix = ShardNames.prefix(u.path(), sha);
    Path root = new Path(cfg.outputRoot());
    FileSystem outFs = HadoopFs.of(root, conf);
    String attempt = SplitTask.attemptTag();
    SftExampleBuilder builder = new SftExampleBuilder(tok, cfg.maxSeqLength());
    SftCounts.Tally tally = new SftCounts.Tally();
    List<String> bad = new ArrayList<>();
    List<Manifest.ShardEntry> shards = new ArrayList<>();
    long train = 0;
    long val = 0;
    Map<String, String> extra = Map.of("source_sha256", sha, "source", u.path());
    try (BufferAllocator alloc = ArrowMemory.child("prep-sft:" + prefix);
        Out trainOut = new Out(alloc, outFs, conf, root, Manifest.TRAIN, prefix, extra, attempt);
        Out valOut =
            new Out(alloc, outFs, conf, root, Manifest.VALIDATION, prefix, extra, attempt);
        SftRecordReader in =
            cfg.pairs()
                ? SftRecordReader.openPairs(inFs.open(src), u.path())
                : SftRecordReader.open(inFs.open(src), u.path())) {
      boolean allValidation = u.role().equals(Manifest.VALIDATION);
      for (SftRecordReader.Item item = in.next(); item != null; item = in.next()) {
        if (item.bad()) {
          if (!cfg.skipBadRecords()) {
            return failed(u, sha, item.error() + " (pass --skip-bad-records to skip such records)");
          }
          tally.bad();
          if (bad.size() < MAX_BAD_MESSAGES) {
            bad.add(item.error());
          }
          continue;
        }
        // a pair is two consecutive rows, chosen then rejected, in the same split (prep-pairs)
        SftExamples.Example[] rows =
            cfg.pairs()
                ? tally.addPair(
                    builder.build(item.pair().as(item.pair().chosen())),
                    builder.build(item.pair().as(item.pair().rejected())),
                    cfg.maxSeqLength())
                : one(tally.add(builder.build(item.record()), cfg.maxSeqLength()));
        if (rows == null) {
          continue;
        }
        boolean toValidation =
            allValidation
                || ValidationSplit.isValidation(sha, item.index(), cfg.validationFraction());
        for (SftExamples.Example e : rows) {
          (toValidation ? valOut : trainOut).write(e);
        }
        if (toValidation) {
          val++;
        } else {
          train++;
        }
      }
      trainOut.finish(shards, u.path());
      valOut.finish(shards, u.path());
    } catch (SftFormatException e) {
      return failed(u, sha, e.getMessage());
    }
    return new Result(u, sha, tally.counts(), train, val, shards, bad, null);
  }

  private static SftExamples.Example[] one(SftExamples.Example e) {
    return e == null ? null : new SftExamples.Example[] {e};
  }

  private static Result failed(Unit u, String sha, String error) {
    return new Result(u, sha, SftCounts.ZERO, 0, 0, List.of(), List.of(), error);
  }

  static String sha256(FileSystem fs, Path p) throws IOException {
    MessageDigest md;
    try {
      md = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    try (InputStream in = new DigestInputStream(fs.open(p), md)) {
      byte[] buf = new byte[1 << 16];
      while (in.read(buf) >= 0) {
        // digesting
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }

  /** The shards of one split of one file. */
  private final class Out implements AutoCloseable {
    private final BufferAllocator alloc;
    private final FileSystem fs;
    private final Configuration conf;
    private final Path root;
    private final String split;
    private final String prefix;
    private final Map<String, String> extra;
    private final String attempt;
    private RollingShardWriter<SftExamples.Example> writer;

    Out(
        BufferAllocator alloc,
        FileSystem fs,
        Configuration conf,
        Path root,
        String split,
        String prefix,
        Map<String, String> extra,
        String attempt) {
      this.alloc = alloc;
      this.fs = fs;
      this.conf = conf;
      this.root = root;
      this.split = split;
      this.prefix = prefix;
      this.extra = extra;
      this.attempt = attempt;
    }

    String rel(int part) {
      return String.format(
          Locale.ROOT, "%s/%s/%s-p%03d.arrow", cfg.shardDir(), split, prefix, part);
    }

    Path tmp(int part) {
      Path f = new Path(root, rel(part));
      return new Path(f.getParent(), "." + f.getName() + ".tmp-" + attempt);
    }

    void write(SftExamples.Example e) throws IOException {
      if (writer == null) {
        Map<String, String> md = new java.util.HashMap<>(extra);
        md.put("split", split);
        SftShardMeta meta =
            new SftShardMeta(
                cfg.maxSeqLength(),
                cfg.tokenizerSha256(),
                cfg.bos(),
                cfg.eos(),
                cfg.pad(),
                SftShardMeta.defaultBatchRows(cfg.maxSeqLength()),
                md);
        writer =
            new RollingShardWriter<>(
                channel -> new SftShardWriter(alloc, meta, channel),
                cfg.shardRows(),
                new HadoopPartStore(fs, root, this::rel, this::tmp));
      }
      writer.write(e);
    }

    void finish(List<Manifest.ShardEntry> out, String source) throws IOException {
      if (writer == null) {
        return;
      }
      for (RollingShardWriter.Part p : writer.finish()) {
        out.add(
            new Manifest.ShardEntry(rel(p.part()), split, p.rows(), p.bytes(), p.sha256(), source));
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
