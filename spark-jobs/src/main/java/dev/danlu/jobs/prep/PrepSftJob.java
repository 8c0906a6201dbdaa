package dev.danlu.jobs.prep;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import dev.danlu.data.sft.PairRecord;
import dev.danlu.data.sft.SftCounts;
import dev.danlu.data.sft.SftManifest;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.util.SerializableConfiguration;

/**
 * The driver of {@code danlu prep-sft}: list the instruction files → reuse files unchanged since
 * the committed version (same path, size and mtime) → one Spark task per other file (parse, build
 * examples, write shards) → refuse on any bad record (unless skipped) → commit a manifest version →
 * print the per-file report → collect garbage.
 */
public final class PrepSftJob {
  static final String PATTERN = "*.{json,jsonl}";
  static final String TEMPLATE = "alpaca2";

  /** The template of preference-pair datasets (prep-pairs): see {@link PairRecord#TEMPLATE}. */
  public static final String PAIRS_TEMPLATE = PairRecord.TEMPLATE;

  /**
   * The options of one run.
   *
   * @param validationFile a file or directory whose records all go to validation, or null
   */
  public record Options(
      String input,
      String tokenizer,
      int maxSeqLength,
      String output,
      String master,
      String validationFile,
      double validationFraction,
      boolean skipBadRecords,
      boolean rebuild,
      long shardBytes,
      int keepVersions,
      boolean pairs) {
    /** The command, for messages. */
    String command() {
      return pairs ? "prep-pairs" : "prep-sft";
    }
  }

  /** What a run did. */
  public record Report(boolean committed, SftManifest manifest, String text) {}

  private PrepSftJob() {}

  public static Report run(JavaSparkContext jsc, Options o, TokenizerInfo tok, PrintStream console)
      throws IOException {
    Configuration conf = jsc.hadoopConfiguration();
    Path root = new Path(o.output());
    FileSystem fs = HadoopFs.of(root, conf);
    SftManifest.Params params =
        new SftManifest.Params(
            tok.sha256(),
            tok.fileName(),
            tok.vocabSize(),
            tok.bosId(),
            tok.eosId(),
            tok.padId() >= 0 ? tok.padId() : 0,
            o.maxSeqLength(),
            o.pairs() ? PAIRS_TEMPLATE : TEMPLATE,
            o.validationFraction());
    Optional<SftManifest> prevCommitted = current(fs, root);
    if (prevCommitted.isPresent()
        && !prevCommitted.get().params().sameContentAs(params)
        && !o.rebuild()) {
      throw new PrepJob.PrepException(
          "refusing to add to "
              + o.output()
              + ": it holds version "
              + prevCommitted.get().version()
              + " made with different parameters ("
              + prevCommitted.get().params()
              + "); pass --rebuild to re-tokenize everything into it, or choose another --output");
    }
    SftManifest prev = prevCommitted.filter(m -> m.params().sameContentAs(params)).orElse(null);
    Map<String, SftManifest.Source> prevByPath = new HashMap<>();
    Map<String, Manifest.ShardEntry> prevShards = new HashMap<>();
    if (prev != null) {
      prev.sources().forEach(s -> prevByPath.put(s.path() + "|" + s.role(), s));
      prev.shards().forEach(s -> prevShards.put(s.path(), s));
    }

    List<SftFileTask.Unit> all = new ArrayList<>();
    for (InputLister.FileRef f : InputLister.list(o.input(), PATTERN, conf)) {
      all.add(new SftFileTask.Unit(f.path(), f.size(), f.mtime(), Manifest.TRAIN));
    }
    if (o.validationFile() != null) {
      for (InputLister.FileRef f : InputLister.list(o.validationFile(), PATTERN, conf)) {
        all.add(new SftFileTask.Unit(f.path(), f.size(), f.mtime(), Manifest.VALIDATION));
      }
    }
    if (all.isEmpty()) {
      throw new PrepJob.PrepException(
          "--input " + o.input() + ": no *.json or *.jsonl files found");
    }
    List<SftFileTask.Unit> todo = new ArrayList<>();
    for (SftFileTask.Unit u : all) {
      SftManifest.Source p = prevByPath.get(u.path() + "|" + u.role());
      if (p == null || p.size() != u.size() || p.mtime() != u.mtime()) {
        todo.add(u);
      }
    }
    console.printf(
        Locale.ROOT,
        "%s: %d files (%d unchanged, reused; %d to tokenize), max_seq_length %d%n",
        o.command(),
        all.size(),
        all.size() - todo.size(),
        todo.size(),
        o.maxSeqLength());
    Map<String, SftFileTask.Result> results = new HashMap<>();
    if (!todo.isEmpty()) {
      jsc.addFile(tok.shipFile().toString());
      SftFileTask task =
          new SftFileTask(
              new SftFileTask.Config(
                  root.toString(),
                  shardDir(params),
                  tok.shipFile().getFileName().toString(),
                  tok.sha256(),
                  params.bosId(),
                  params.eosId(),
                  params.padId(),
                  o.maxSeqLength(),
                  o.validationFraction(),
                  o.skipBadRecords(),
                  shardRows(o),
                  o.pairs()));
      SerializableConfiguration sconf = new SerializableConfiguration(conf);
      List<SftFileTask.Unit> sorted = new ArrayList<>(todo);
      sorted.sort(Comparator.comparingLong(SftFileTask.Unit::size).reversed());
      jsc.setJobGroup(
          "danlu-" + o.command(), "danlu " + o.command() + ": " + todo.size() + " files", true);
      List<SftFileTask.Result> rs =
          jsc.parallelize(sorted, sorted.size()).map(u -> task.run(u, sconf.value())).collect();
      jsc.clearJobGroup();
      List<String> errors = new ArrayList<>();
      for (SftFileTask.Result r : rs) {
        results.put(r.unit().path() + "|" + r.unit().role(), r);
        if (r.error() != null) {
          errors.add(r.error());
        }
      }
      if (!errors.isEmpty()) {
        errors.sort(null);
        throw new PrepJob.PrepException(
            "bad instruction data, nothing committed:\n  " + String.join("\n  ", errors));
      }
    }

    List<SftManifest.Source> sources = new ArrayList<>();
    List<Manifest.ShardEntry> train = new ArrayList<>();
    List<Manifest.ShardEntry> val = new ArrayList<>();
    SftCounts totals = SftCounts.ZERO;
    long trainRows = 0;
    long valRows = 0;
    all.sort(Comparator.comparing(SftFileTask.Unit::role).thenComparing(SftFileTask.Unit::path));
    for (SftFileTask.Unit u : all) {
      String key = u.path() + "|" + u.role();
      SftFileTask.Result r = results.get(key);
      SftManifest.Source s;
      List<Manifest.ShardEntry> shards = new ArrayList<>();
      if (r != null) {
        shards.addAll(r.shards());
        s =
            new SftManifest.Source(
                u.path(),
                u.size(),
                u.mtime(),
                r.sha256(),
                u.role(),
                r.counts(),
                r.trainRows(),
                r.validationRows(),
                r.badRecords(),
                r.shards().stream().map(Manifest.ShardEntry::path).toList());
      } else {
        s = prevByPath.get(key);
        for (String p : s.shards()) {
          Manifest.ShardEntry se = prevShards.get(p);
          if (se == null) {
            throw new PrepJob.PrepException(
                "previous manifest lists shard " + p + " but has no entry for it; use --rebuild");
          }
          shards.add(se);
        }
      }
      sources.add(s);
      for (Manifest.ShardEntry se : shards) {
        (se.split().equals(Manifest.TRAIN) ? train : val).add(se);
      }
      totals = totals.plus(s.counts());
      trainRows += s.trainRows();
      valRows += s.validationRows();
    }
    List<Manifest.ShardEntry> shards = new ArrayList<>(train);
    shards.addAll(val);
    long prevVersion = prevCommitted.map(SftManifest::version).orElse(0L);
    SftManifest candidate =
        new SftManifest(
            SftManifest.FORMAT_VERSION,
            SftManifest.FORMAT,
            prevVersion,
            "",
            params,
            totals,
            trainRows,
            valRows,
            shards,
            sources);
    String text = report(candidate);
    console.print(text);
    if (prevCommitted.isPresent() && candidate.equals(prevCommitted.get().withoutTimestamps())) {
      console.println(
          o.command()
              + ": "
              + o.output()
              + " is up to date at version "
              + prevVersion
              + "; nothing committed");
      return new Report(false, prevCommitted.get(), text);
    }
    SftManifest committed =
        new SftManifest(
            SftManifest.FORMAT_VERSION,
            SftManifest.FORMAT,
            prevVersion + 1,
            Instant.now().toString(),
            params,
            totals,
            trainRows,
            valRows,
            shards,
            sources);
    byte[] json = SftManifest.toJson(committed);
    HadoopFs.mkdirs(fs, new Path(root, ManifestIo.VERSIONS_DIR));
    HadoopFs.writeAtomically(fs, new Path(root, ManifestIo.versionPath(committed.version())), json);
    HadoopFs.writeAtomically(fs, new Path(root, ManifestIo.CURRENT), json);
    console.printf(
        Locale.ROOT,
        "%s: committed version %d: %d %s (%d train, %d validation) -> %s%n",
        o.command(),
        committed.version(),
        totals.kept(),
        o.pairs() ? "pairs" : "examples",
        trainRows,
        valRows,
        o.output());
    int gc = collectGarbage(fs, root, committed, o.keepVersions());
    if (gc > 0) {
      console.printf(Locale.ROOT, "%s: garbage collected %d unreferenced files%n", o.command(), gc);
    }
    return new Report(true, committed, text);
  }

  /** Rows per shard; even for pairs so that no pair straddles two shards. */
  private static long shardRows(Options o) {
    long rows =
        dev.danlu.data.sft.SftShardMeta.rowsForTargetBytes(o.shardBytes(), o.maxSeqLength());
    return o.pairs() ? Math.max(2, rows & ~1L) : rows;
  }

  /** The per-file report: read, kept, truncated, dropped fully masked, bad. */
  static String report(SftManifest m) {
    String cmd = PAIRS_TEMPLATE.equals(m.params().template()) ? "prep-pairs" : "prep-sft";
    StringBuilder sb = new StringBuilder();
    sb.append(
        String.format(
            Locale.ROOT,
            "%s: %-10s %8s %8s %8s %8s %8s %8s %8s  %s%n",
            cmd,
            "role",
            "read",
            "kept",
            "train",
            "valid",
            "truncated",
            "masked",
            "bad",
            "file"));
    for (SftManifest.Source s : m.sources()) {
      SftCounts c = s.counts();
      sb.append(
          String.format(
              Locale.ROOT,
              "%s: %-10s %8d %8d %8d %8d %8d %8d %8d  %s%n",
              cmd,
              s.role(),
              c.read(),
              c.kept(),
              s.trainRows(),
              s.validationRows(),
              c.truncated(),
              c.droppedFullyMasked(),
              c.bad(),
              s.path()));
      for (String b : s.badRecords()) {
        sb.append(cmd).append(":   skipped bad record: ").append(b).append('\n');
      }
    }
    SftCounts t = m.totals();
    sb.append(
        String.format(
            Locale.ROOT,
            "%s: total: %d records read, %d kept (%d train, %d validation), %d truncated,"
                + " %d dropped fully masked (prompt >= max_seq_length %d%s), %d bad%n",
            cmd,
            t.read(),
            t.kept(),
            m.trainRows(),
            m.validationRows(),
            t.truncated(),
            t.droppedFullyMasked(),
            m.params().maxSeqLength(),
            cmd.equals("prep-pairs") ? ", or responses equal after the cut" : "",
            t.bad()));
    return sb.toString();
  }

  static String shardDir(SftManifest.Params p) {
    return ManifestIo.SHARDS_DIR
        + "/"
        + ShardNames.hash8(
            String.join(
                "|",
                "sft",
                p.tokenizerSha256(),
                Integer.toString(p.maxSeqLength()),
                p.template(),
                Double.toString(p.validationFraction()),
                Integer.toString(p.bosId()),
                Integer.toString(p.eosId()),
                Integer.toString(p.padId())));
  }

  static Optional<SftManifest> current(FileSystem fs, Path root) throws IOException {
    Path p = new Path(root, ManifestIo.CURRENT);
    byte[] json;
    try (InputStream in = fs.open(p)) {
      json = in.readAllBytes();
    } catch (FileNotFoundException e) {
      return Optional.empty();
    }
    try {
      return Optional.of(SftManifest.fromJson(json, p.toString()));
    } catch (IOException e) {
      throw new PrepJob.PrepException(
          "refusing to write to " + root + ": " + e.getMessage() + "; choose another --output");
    }
  }

  /**
   * Deletes files under {@code shards/} referenced by none of the newest {@code keep} versions, and
   * older manifest versions; runs after the commit.
   */
  private static int collectGarbage(FileSystem fs, Path root, SftManifest current, int keep)
      throws IOException {
    Set<String> live = new HashSet<>();
    current.shards().forEach(s -> live.add(s.path()));
    int deleted = 0;
    Path versions = new Path(root, ManifestIo.VERSIONS_DIR);
    for (FileStatus st : fs.listStatus(versions)) {
      java.util.regex.Matcher mt =
          java.util.regex.Pattern.compile("manifest-(\\d+)\\.json").matcher(st.getPath().getName());
      if (!mt.matches()) {
        continue;
      }
      long v = Long.parseLong(mt.group(1));
      if (v > current.version()) {
        continue;
      }
      if (v > current.version() - keep) {
        try (InputStream in = fs.open(st.getPath())) {
          SftManifest.fromJson(in.readAllBytes(), st.getPath().toString())
              .shards()
              .forEach(s -> live.add(s.path()));
        }
      } else {
        fs.delete(st.getPath(), false);
        deleted++;
      }
    }
    Path shards = new Path(root, ManifestIo.SHARDS_DIR);
    if (fs.exists(shards)) {
      String base = fs.makeQualified(root).toUri().getPath();
      for (FileStatus st : HadoopFs.listFilesRecursive(fs, shards)) {
        String rel = st.getPath().toUri().getPath().substring(base.length()).replaceFirst("^/", "");
        if (!live.contains(rel)) {
          fs.delete(st.getPath(), false);
          deleted++;
        }
      }
    }
    return deleted;
  }
}
