package dev.danlu.jobs.prep;

import dev.danlu.data.chunk.SourceScan;
import dev.danlu.data.chunk.SplitChunker;
import dev.danlu.data.manifest.Manifest;
import java.io.IOException;
import java.io.PrintStream;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
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
                + PlanText.paramDiff(prevCommitted.get().params(), params)
                + "); pass --rebuild to re-tokenize everything into it, or choose another --output");
      }
      console.println(
          "prep: --rebuild: parameters changed ("
              + PlanText.paramDiff(prevCommitted.get().params(), params)
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

    Map<String, SourceScan.Result> scans = ScanStage.run(jsc, o, toScan, console);
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
      String prefix = ShardNames.prefix(f.path(), r.sha256());
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
    PrepReport.Work work =
        new PrepReport.Work(
            files.size(),
            toScan.size(),
            tokenize,
            reused,
            removed,
            skipped,
            bytesToTokenize,
            units.size());
    String plan = PlanText.plan(o, prevCommitted.orElse(null), work, entries, scans);
    console.print(plan);
    if (o.dryRun()) {
      return new PrepReport(
          false, true, prevCommitted.map(Manifest::version).orElse(0L), work, null, plan);
    }

    time.lap("plan");
    List<WorkUnit.Result> results =
        TokenizeStage.run(jsc, o, tok, params, units, tokenize.size(), bytesToTokenize, console);
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
      return new PrepReport(false, false, prevVersion, work, prevCommitted.get(), plan);
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
    return new PrepReport(true, false, committed.version(), work, committed, plan);
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
}
