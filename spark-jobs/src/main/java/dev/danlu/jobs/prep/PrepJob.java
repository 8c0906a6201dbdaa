package dev.danlu.jobs.prep;

import dev.danlu.data.chunk.ChunkingMode;
import dev.danlu.data.chunk.SourceScan;
import dev.danlu.data.chunk.SplitChunker;
import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import dev.danlu.data.shard.RollingShardWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.util.LongAccumulator;
import org.apache.spark.util.SerializableConfiguration;

/**
 * The driver of {@code danlu prep}: list → decide what to reuse → scan changed files → tokenize
 * their splits → commit a manifest version → collect garbage.
 *
 * <p>Reuse: a file whose path, size and mtime equal the previous manifest's entry is trusted
 * without reading (its stored content hash is reused); any other file is scanned, and if its
 * content hash equals the previous entry's, its shards are reused too (only the mtime changes).
 * Only new or changed files are tokenized. Nothing is committed when nothing changed.
 */
public final class PrepJob {
  /** A failure the operator must fix (bad input, refused output); the message says what to do. */
  public static final class PrepException extends IOException {
    private static final long serialVersionUID = 1L;

    public PrepException(String message) {
      super(message);
    }
  }

  private PrepJob() {}

  /** Parses {@code prep} arguments, loads the tokenizer and runs on an existing context. */
  public static PrepReport run(JavaSparkContext jsc, String[] args, PrintStream console)
      throws IOException {
    PrepOptions o = PrepOptions.parse(args);
    return run(jsc, o, TokenizerInfo.load(o.tokenizer(), jsc.hadoopConfiguration()), console);
  }

  public static PrepReport run(
      JavaSparkContext jsc, PrepOptions o, TokenizerInfo tok, PrintStream console)
      throws IOException {
    Configuration conf = jsc.hadoopConfiguration();
    Path outRoot = new Path(o.output());
    DatasetStore store = new DatasetStore(outRoot, conf);
    Manifest.Params params =
        new Manifest.Params(
            tok.sha256(),
            tok.fileName(),
            tok.vocabSize(),
            tok.bosId(),
            tok.eosId(),
            o.blockSize(),
            o.chunking().cliName(),
            o.validationFraction(),
            o.utf8(),
            o.maxLineBytes());
    Optional<Manifest> prevCommitted = store.current();
    if (prevCommitted.isPresent() && !prevCommitted.get().params().sameContentAs(params)) {
      if (!o.rebuild()) {
        throw new PrepException(
            "refusing to add to "
                + o.output()
                + ": it holds version "
                + prevCommitted.get().version()
                + " made with different parameters ("
                + paramDiff(prevCommitted.get().params(), params)
                + "); pass --rebuild to re-tokenize everything into it, or choose another --output");
      }
      console.println(
          "prep: --rebuild: parameters changed ("
              + paramDiff(prevCommitted.get().params(), params)
              + "), re-tokenizing everything");
    }
    Manifest prev = prevCommitted.filter(m -> m.params().sameContentAs(params)).orElse(null);
    Map<String, Manifest.SourceEntry> prevByPath = new HashMap<>();
    Map<String, Manifest.ShardEntry> prevShards = new HashMap<>();
    if (prev != null) {
      prev.sources().forEach(s -> prevByPath.put(s.path(), s));
      prev.shards().forEach(s -> prevShards.put(s.path(), s));
    }

    Timings time = new Timings();
    List<InputLister.FileRef> files = InputLister.list(o.input(), o.pattern(), conf);
    time.lap("list");
    List<InputLister.FileRef> toScan = new ArrayList<>();
    for (InputLister.FileRef f : files) {
      Manifest.SourceEntry p = prevByPath.get(f.path());
      if (o.rehash() || p == null || p.size() != f.size() || p.mtime() != f.mtime()) {
        toScan.add(f);
      }
    }

    // ---- scan (hash, UTF-8, NUL, split plan) ----
    long splitBytes = o.chunking() == ChunkingMode.FILE ? Long.MAX_VALUE : o.splitBytes();
    Map<String, SourceScan.Result> scans = new HashMap<>();
    if (!toScan.isEmpty()) {
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
              "scan",
              console,
              o.progressSeconds(),
              sBytes,
              null,
              sFiles,
              scanBytes,
              toScan.size())) {
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
        throw new PrepException(
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
          throw new PrepException(
              "--utf8 fail: "
                  + bad.size()
                  + " file(s) are not valid UTF-8; fix or remove them, or pass --utf8 replace:\n  "
                  + String.join("\n  ", bad));
        }
      }
    }

    time.lap("scan");
    // ---- plan ----
    List<String> tokenize = new ArrayList<>();
    List<String> reused = new ArrayList<>();
    List<String> skipped = new ArrayList<>();
    Map<String, Manifest.SourceEntry> entries = new LinkedHashMap<>();
    List<WorkUnit> units = new ArrayList<>();
    long bytesToTokenize = 0;
    for (InputLister.FileRef f : files) {
      Manifest.SourceEntry p = prevByPath.get(f.path());
      SourceScan.Result r = scans.get(f.path());
      if (r == null) { // unchanged size and mtime: trusted
        entries.put(f.path(), p);
        (p.status().equals(Manifest.SourceEntry.OK) ? reused : skipped).add(f.path());
        continue;
      }
      if (r.binary()) {
        skipped.add(f.path());
        entries.put(
            f.path(),
            new Manifest.SourceEntry(
                f.path(),
                f.size(),
                f.mtime(),
                null,
                Manifest.SourceEntry.SKIPPED,
                "binary: NUL byte at offset " + r.nulOffset(),
                0,
                0,
                0,
                0,
                0,
                -1,
                0,
                List.of()));
        continue;
      }
      if (p != null
          && r.sha256().equals(p.sha256())
          && p.status().equals(Manifest.SourceEntry.OK)) {
        reused.add(f.path()); // touched, same content
        entries.put(
            f.path(),
            new Manifest.SourceEntry(
                f.path(),
                f.size(),
                f.mtime(),
                p.sha256(),
                p.status(),
                p.skipReason(),
                p.lines(),
                p.tokens(),
                p.blocks(),
                p.droppedTokens(),
                p.utf8Replacements(),
                p.firstInvalidUtf8Offset(),
                p.oversizedLines(),
                p.shards()));
        continue;
      }
      tokenize.add(f.path());
      bytesToTokenize += f.size();
      entries.put(f.path(), null); // filled from the task results
      String prefix = hash8(f.path()) + "-" + r.sha256().substring(0, 16);
      List<SourceScan.SplitPoint> sp = r.splits();
      // Splits where no group starts get no task; their bytes are read by the task before them,
      // so a unit's size (for scheduling and progress) runs to the next unit's start.
      List<Integer> owners = new ArrayList<>();
      List<SplitChunker.Range> ranges = new ArrayList<>();
      for (int s = 0; s < sp.size(); s++) {
        long next = s + 1 < sp.size() ? sp.get(s + 1).startLine() : r.lines();
        SplitChunker.Range range =
            SplitChunker.Range.of(
                sp.get(s).startByte(), sp.get(s).startLine(), next, r.lines(), o.chunking());
        if (!range.isEmpty()) {
          owners.add(s);
          ranges.add(range);
        }
      }
      for (int k = 0; k < owners.size(); k++) {
        long end = k + 1 < owners.size() ? ranges.get(k + 1).startByte() : r.size();
        units.add(
            new WorkUnit(
                f.path(),
                f.size(),
                f.mtime(),
                r.sha256(),
                owners.get(k),
                ranges.get(k),
                end - ranges.get(k).startByte(),
                String.format(Locale.ROOT, "%s-s%05d", prefix, owners.get(k))));
      }
    }
    Set<String> current = files.stream().map(InputLister.FileRef::path).collect(Collectors.toSet());
    List<String> removed =
        prevByPath.keySet().stream().filter(p -> !current.contains(p)).sorted().toList();
    String plan =
        plan(
            o,
            prevCommitted.orElse(null),
            files.size(),
            toScan.size(),
            tokenize,
            reused,
            removed,
            skipped,
            bytesToTokenize,
            units.size(),
            entries,
            scans);
    console.print(plan);
    if (o.dryRun()) {
      return new PrepReport(
          false,
          true,
          prevCommitted.map(Manifest::version).orElse(0L),
          files.size(),
          toScan.size(),
          tokenize,
          reused,
          removed,
          skipped,
          bytesToTokenize,
          units.size(),
          null,
          plan);
    }

    time.lap("plan");
    // ---- tokenize ----
    List<WorkUnit.Result> results = List.of();
    if (!units.isEmpty()) {
      jsc.addFile(tok.shipFile().toString());
      units.sort(Comparator.comparingLong(WorkUnit::estimatedBytes).reversed());
      SplitTask.Config cfg =
          new SplitTask.Config(
              outRoot.toString(),
              shardDir(params),
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
      LongAccumulator tUnits = jsc.sc().longAccumulator("prep splits done");
      SplitTask task = new SplitTask(cfg, tBytes, tTokens, tUnits);
      SerializableConfiguration sconf = new SerializableConfiguration(conf);
      long unitBytes = units.stream().mapToLong(WorkUnit::estimatedBytes).sum();
      String header =
          String.format(
              Locale.ROOT,
              "danlu prep 2/2: tokenize %d files (%.1f MB) in %d splits -> %s",
              tokenize.size(),
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

    time.lap("tokenize");
    // ---- manifest ----
    Map<String, List<WorkUnit.Result>> byPath = new HashMap<>();
    for (WorkUnit.Result r : results) {
      byPath.computeIfAbsent(r.path(), k -> new ArrayList<>()).add(r);
    }
    List<Manifest.ShardEntry> train = new ArrayList<>();
    List<Manifest.ShardEntry> val = new ArrayList<>();
    List<Manifest.SourceEntry> sources = new ArrayList<>();
    for (InputLister.FileRef f : files) {
      Manifest.SourceEntry e = entries.get(f.path());
      List<Manifest.ShardEntry> shards = new ArrayList<>();
      if (e == null) {
        SourceScan.Result scan = scans.get(f.path());
        List<WorkUnit.Result> rs = new ArrayList<>(byPath.getOrDefault(f.path(), List.of()));
        rs.sort(Comparator.comparingInt(WorkUnit.Result::splitIndex));
        long lines = 0, tokens = 0, blocks = 0, dropped = 0;
        for (WorkUnit.Result r : rs) {
          lines += r.lines();
          tokens += r.tokens();
          blocks += r.blocks();
          dropped += r.droppedTokens();
          shards.addAll(r.shards());
        }
        if (lines != scan.lines()) {
          throw new PrepException(
              f.path()
                  + ": tokenized "
                  + lines
                  + " lines, the scan counted "
                  + scan.lines()
                  + "; the file changed during the run, re-run prep");
        }
        e =
            new Manifest.SourceEntry(
                f.path(),
                f.size(),
                f.mtime(),
                scan.sha256(),
                Manifest.SourceEntry.OK,
                null,
                lines,
                tokens,
                blocks,
                dropped,
                scan.utf8Replacements(),
                scan.firstInvalidUtf8Offset(),
                scan.oversizedLines(),
                shards.stream().map(Manifest.ShardEntry::path).toList());
      } else {
        for (String s : e.shards()) {
          Manifest.ShardEntry se = prevShards.get(s);
          if (se == null) {
            throw new PrepException(
                "previous manifest lists shard "
                    + s
                    + " for "
                    + f.path()
                    + " but has no entry for it; the dataset is damaged, re-run with --rebuild");
          }
          shards.add(se);
        }
      }
      sources.add(e);
      for (Manifest.ShardEntry s : shards) {
        (s.split().equals(Manifest.TRAIN) ? train : val).add(s);
      }
    }
    List<Manifest.ShardEntry> allShards = new ArrayList<>(train);
    allShards.addAll(val);
    Manifest.Totals totals = totals(sources, allShards);
    long prevVersion = prevCommitted.map(Manifest::version).orElse(0L);
    Manifest candidate =
        new Manifest(
            Manifest.FORMAT_VERSION,
            prevVersion,
            Instant.now().toString(),
            params,
            totals,
            allShards,
            sources);
    if (prevCommitted.isPresent()
        && candidate.withoutTimestamps().equals(prevCommitted.get().withoutTimestamps())) {
      console.println(
          "prep: "
              + o.output()
              + " is up to date at version "
              + prevVersion
              + "; nothing committed");
      return new PrepReport(
          false,
          false,
          prevVersion,
          files.size(),
          toScan.size(),
          tokenize,
          reused,
          removed,
          skipped,
          bytesToTokenize,
          units.size(),
          prevCommitted.get(),
          plan);
    }
    Manifest committed =
        new Manifest(
            Manifest.FORMAT_VERSION,
            prevVersion + 1,
            Instant.now().toString(),
            params,
            totals,
            allShards,
            sources);
    time.lap("manifest");
    store.commit(committed);
    time.lap("commit");
    DatasetStore.GcResult gc = store.collectGarbage(committed, o.keepVersions());
    time.lap("gc");
    console.println("prep: time " + time);
    console.printf(
        Locale.ROOT,
        "prep: committed version %d: %d files, %d lines, %d tokens, %d blocks (%d train, %d validation), %d tokens dropped%n",
        committed.version(),
        totals.files(),
        totals.lines(),
        totals.tokens(),
        totals.blocks(),
        totals.trainBlocks(),
        totals.validationBlocks(),
        totals.droppedTokens());
    if (gc.shardFiles() > 0 || gc.manifestVersions() > 0) {
      console.printf(
          Locale.ROOT,
          "prep: garbage collected %d unreferenced shard/temp files (%.1f MB) and %d old manifest versions%n",
          gc.shardFiles(),
          gc.shardBytes() / 1048576.0,
          gc.manifestVersions());
    }
    return new PrepReport(
        true,
        false,
        committed.version(),
        files.size(),
        toScan.size(),
        tokenize,
        reused,
        removed,
        skipped,
        bytesToTokenize,
        units.size(),
        committed,
        plan);
  }

  /**
   * Groups units into Spark tasks: a unit per task would spend more on scheduling than on work for
   * corpora of many small files. Units go, largest first, to the least loaded of {@code n} tasks
   * (LPT), with {@code n} = the larger of 4 tasks per core and one task per 64 MB of input (so
   * progress and retries stay fine-grained), at most one per unit.
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

  private static Manifest.Totals totals(
      List<Manifest.SourceEntry> sources, List<Manifest.ShardEntry> shards) {
    long ok = 0,
        skipped = 0,
        bytes = 0,
        lines = 0,
        tokens = 0,
        blocks = 0,
        dropped = 0,
        repl = 0,
        over = 0;
    for (Manifest.SourceEntry s : sources) {
      if (s.status().equals(Manifest.SourceEntry.OK)) {
        ok++;
      } else {
        skipped++;
      }
      bytes += s.size();
      lines += s.lines();
      tokens += s.tokens();
      blocks += s.blocks();
      dropped += s.droppedTokens();
      repl += s.utf8Replacements();
      over += s.oversizedLines();
    }
    long train =
        shards.stream()
            .filter(s -> s.split().equals(Manifest.TRAIN))
            .mapToLong(Manifest.ShardEntry::rows)
            .sum();
    long val =
        shards.stream()
            .filter(s -> s.split().equals(Manifest.VALIDATION))
            .mapToLong(Manifest.ShardEntry::rows)
            .sum();
    if (train + val != blocks) {
      throw new IllegalStateException(
          "shards hold " + (train + val) + " blocks, sources report " + blocks);
    }
    return new Manifest.Totals(
        ok, skipped, bytes, lines, tokens, blocks, train, val, dropped, repl, over);
  }

  private static String paramDiff(Manifest.Params a, Manifest.Params b) {
    List<String> d = new ArrayList<>();
    if (!a.tokenizerSha256().equals(b.tokenizerSha256())) {
      d.add(
          "tokenizer sha256 "
              + a.tokenizerSha256()
              + " ("
              + a.tokenizerFile()
              + ") vs "
              + b.tokenizerSha256()
              + " ("
              + b.tokenizerFile()
              + ")");
    }
    if (a.blockSize() != b.blockSize()) {
      d.add("block size " + a.blockSize() + " vs " + b.blockSize());
    }
    if (!a.chunking().equals(b.chunking())) {
      d.add("chunking " + a.chunking() + " vs " + b.chunking());
    }
    if (Double.compare(a.validationFraction(), b.validationFraction()) != 0) {
      d.add("validation fraction " + a.validationFraction() + " vs " + b.validationFraction());
    }
    if (!a.utf8Policy().equals(b.utf8Policy())) {
      d.add("utf8 policy " + a.utf8Policy() + " vs " + b.utf8Policy());
    }
    if (a.maxLineBytes() != b.maxLineBytes()) {
      d.add("max line bytes " + a.maxLineBytes() + " vs " + b.maxLineBytes());
    }
    if (a.bosId() != b.bosId() || a.eosId() != b.eosId()) {
      d.add("bos/eos " + a.bosId() + "/" + a.eosId() + " vs " + b.bosId() + "/" + b.eosId());
    }
    return "existing vs requested: " + String.join("; ", d);
  }

  private static String plan(
      PrepOptions o,
      Manifest prev,
      int listed,
      int scanned,
      List<String> tokenize,
      List<String> reused,
      List<String> removed,
      List<String> skipped,
      long bytes,
      int units,
      Map<String, Manifest.SourceEntry> entries,
      Map<String, SourceScan.Result> scans) {
    StringBuilder sb = new StringBuilder();
    sb.append(
        String.format(
            Locale.ROOT,
            "prep plan for %s (%s):%n  %d files listed, %d scanned (new, or size/mtime changed)%n"
                + "  tokenize %d files, %.1f MB, %d tasks%n  reuse %d files; remove %d files; skip %d files%n",
            o.output(),
            prev == null ? "new dataset" : "on top of version " + prev.version(),
            listed,
            scanned,
            tokenize.size(),
            bytes / 1048576.0,
            units,
            reused.size(),
            removed.size(),
            skipped.size()));
    int shown = 0;
    for (String p : tokenize) {
      if (shown++ == 20) {
        sb.append("    ... ").append(tokenize.size() - 20).append(" more\n");
        break;
      }
      SourceScan.Result r = scans.get(p);
      sb.append(
          String.format(
              Locale.ROOT,
              "    + %s (%d lines%s)%n",
              p,
              r.lines(),
              r.utf8Replacements() > 0
                  ? ", " + r.utf8Replacements() + " invalid UTF-8 sequences replaced"
                  : ""));
    }
    for (String p : removed) {
      sb.append("    - ").append(p).append('\n');
    }
    for (String p : skipped) {
      Manifest.SourceEntry e = entries.get(p);
      sb.append("    ! ").append(p).append(": skipped, ").append(e.skipReason()).append('\n');
    }
    return sb.toString();
  }

  /** Wall time per phase, for the summary line. */
  private static final class Timings {
    private final StringBuilder sb = new StringBuilder();
    private long last = System.nanoTime();

    void lap(String phase) {
      long now = System.nanoTime();
      sb.append(sb.length() == 0 ? "" : ", ")
          .append(String.format(Locale.ROOT, "%s %.2fs", phase, (now - last) / 1e9));
      last = now;
    }

    @Override
    public String toString() {
      return sb.toString();
    }
  }

  /**
   * Shards of different parameters live in different directories, so a {@code --rebuild} never
   * overwrites a file that a kept older version still references (names are otherwise equal).
   */
  static String shardDir(Manifest.Params p) {
    String key =
        String.join(
            "|",
            p.tokenizerSha256(),
            Integer.toString(p.blockSize()),
            p.chunking(),
            Double.toString(p.validationFraction()),
            p.utf8Policy(),
            Integer.toString(p.maxLineBytes()),
            Integer.toString(p.bosId()),
            Integer.toString(p.eosId()));
    return ManifestIo.SHARDS_DIR + "/" + hash8(key);
  }

  static String hash8(String s) {
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)))
          .substring(0, 8);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
