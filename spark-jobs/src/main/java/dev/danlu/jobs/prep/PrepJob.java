package dev.danlu.jobs.prep;

import dev.danlu.data.chunk.SourceScan;
import dev.danlu.data.manifest.Manifest;
import java.io.IOException;
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
    PrepPlan plan = PrepPlan.build(o, prev, files, toScan.size(), scans, jsc.defaultParallelism());
    PrepReport.Work work = plan.work();
    String planText = PlanText.plan(o, prevCommitted.orElse(null), work, plan.entries(), scans);
    console.print(planText);
    if (o.dryRun()) {
      return new PrepReport(
          false, true, prevCommitted.map(Manifest::version).orElse(0L), work, null, planText);
    }

    time.lap("plan");
    List<WorkUnit.Result> results =
        TokenizeStage.run(
            jsc,
            o,
            tok,
            params,
            new ArrayList<>(plan.units()),
            work.tokenized().size(),
            work.bytesTokenized(),
            console);
    time.lap("tokenize");
    List<Manifest.SourceEntry> sources = new ArrayList<>();
    List<Manifest.ShardEntry> allShards = assemble(plan, results, prevShards, sources);
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
      return new PrepReport(false, false, prevVersion, work, prevCommitted.get(), planText);
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
    return new PrepReport(true, false, committed.version(), work, committed, planText);
  }

  /**
   * The sources and shards of the new version from the plan and the task results. Shards are
   * ordered train first, then validation; within a split by each file (or group, at its first
   * member) in path order, then unit, then part.
   */
  private static List<Manifest.ShardEntry> assemble(
      PrepPlan plan,
      List<WorkUnit.Result> results,
      Map<String, Manifest.ShardEntry> prevShards,
      List<Manifest.SourceEntry> sources)
      throws PrepException {
    Map<String, List<WorkUnit.PieceResult>> byPath = new HashMap<>();
    Map<String, WorkUnit.Result> byPrefix = new HashMap<>();
    Map<WorkUnit.PieceResult, WorkUnit.Result> unitOf = new java.util.IdentityHashMap<>();
    for (WorkUnit.Result r : results) {
      byPrefix.put(r.shardPrefix(), r);
      for (WorkUnit.PieceResult p : r.pieces()) {
        byPath.computeIfAbsent(p.path(), k -> new ArrayList<>()).add(p);
        unitOf.put(p, r);
      }
    }
    List<Manifest.ShardEntry> train = new ArrayList<>();
    List<Manifest.ShardEntry> val = new ArrayList<>();
    Set<String> groupsDone = new HashSet<>();
    for (InputLister.FileRef f : plan.files()) {
      Manifest.SourceEntry e = plan.entries().get(f.path());
      String group = plan.groupOf().get(f.path());
      List<Manifest.ShardEntry> shards = new ArrayList<>();
      if (e == null) {
        Manifest.SourceEntry x = plan.expected().get(f.path());
        List<WorkUnit.PieceResult> rs = new ArrayList<>(byPath.getOrDefault(f.path(), List.of()));
        rs.sort(Comparator.comparingInt(WorkUnit.PieceResult::splitIndex));
        long lines = 0, tokens = 0, blocks = 0, dropped = 0;
        List<String> holding = new ArrayList<>();
        for (WorkUnit.PieceResult r : rs) {
          lines += r.lines();
          tokens += r.tokens();
          blocks += r.blocks();
          dropped += r.droppedTokens();
          holding.addAll(r.shards());
        }
        if (lines != x.lines()) {
          throw new PrepException(
              f.path()
                  + ": tokenized "
                  + lines
                  + " lines, expected "
                  + x.lines()
                  + "; the file changed during the run, re-run prep");
        }
        e =
            new Manifest.SourceEntry(
                f.path(),
                f.size(),
                f.mtime(),
                x.sha256(),
                Manifest.SourceEntry.OK,
                null,
                lines,
                tokens,
                blocks,
                dropped,
                x.utf8Replacements(),
                x.firstInvalidUtf8Offset(),
                x.oversizedLines(),
                holding,
                group);
        if (group == null) {
          rs.forEach(r -> shards.addAll(unitOf.get(r).shards()));
        } else if (groupsDone.add(group)) {
          for (String prefix : plan.unitsOfGroup().get(group)) {
            shards.addAll(byPrefix.get(prefix).shards());
          }
        }
      } else if (group != null) {
        if (groupsDone.add(group)) {
          shards.addAll(plan.reusedGroupShards().getOrDefault(group, List.of()));
        }
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
    List<Manifest.ShardEntry> all = new ArrayList<>(train);
    all.addAll(val);
    return all;
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
