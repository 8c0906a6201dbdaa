package dev.danlu.jobs.prep;

import dev.danlu.data.chunk.ChunkingMode;
import dev.danlu.data.chunk.SourceScan;
import dev.danlu.data.chunk.SplitChunker;
import dev.danlu.data.manifest.FileGroups;
import dev.danlu.data.manifest.Manifest;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The driver's plan of one prep run, fixed before any tokenization: what each listed file becomes
 * (reused, skipped, tokenized alone, or tokenized with its packing group) and the work units. Plain
 * Java, no Spark: the scale simulation runs it on synthetic listings.
 *
 * @param files every listed file, in path order
 * @param entries manifest entries known without tokenizing (reused and skipped files)
 * @param groupOf each grouped file's group (reused or written)
 * @param reusedGroupShards shards of each reused group, in the previous manifest's order
 * @param unitsOfGroup prefixes of each written group's units, in order
 * @param expected per tokenized file: what its entry takes from the scan or the previous version
 *     (hash, lines, UTF-8 and oversized counts)
 * @param units the work units, in plan order
 */
record PrepPlan(
    List<InputLister.FileRef> files,
    Map<String, Manifest.SourceEntry> entries,
    Map<String, String> groupOf,
    Map<String, List<Manifest.ShardEntry>> reusedGroupShards,
    Map<String, List<String>> unitsOfGroup,
    Map<String, Manifest.SourceEntry> expected,
    List<WorkUnit> units,
    PrepReport.Work work) {

  /** Each file's open cost in a group's weight (Spark's {@code openCostInBytes}, scaled down). */
  static final long OPEN_COST = 64 << 10;

  /** Smallest unit a group is cut into when the run sizes its units. */
  static final long MIN_UNIT_BYTES = 1 << 20;

  /**
   * @param prev the previous version (same content parameters), null for a new dataset
   * @param scans scans of the files not trusted by size and mtime
   * @param cores the cluster's default parallelism
   */
  static PrepPlan build(
      PrepOptions o,
      Manifest prev,
      List<InputLister.FileRef> files,
      int filesScanned,
      Map<String, SourceScan.Result> scans,
      int cores) {
    Map<String, Manifest.SourceEntry> prevByPath = new HashMap<>();
    Map<String, List<String>> prevGroups = new HashMap<>();
    if (prev != null) {
      for (Manifest.SourceEntry s : prev.sources()) {
        prevByPath.put(s.path(), s);
        if (s.group() != null) {
          prevGroups.computeIfAbsent(s.group(), k -> new ArrayList<>()).add(s.path());
        }
      }
    }
    List<String> changed = new ArrayList<>();
    List<String> skipped = new ArrayList<>();
    Map<String, Manifest.SourceEntry> entries = new LinkedHashMap<>();
    Map<String, Manifest.SourceEntry> expected = new HashMap<>();
    List<FileGroups.File> candidates = new ArrayList<>();
    for (InputLister.FileRef f : files) {
      Manifest.SourceEntry p = prevByPath.get(f.path());
      SourceScan.Result r = scans.get(f.path());
      if (r == null && !p.status().equals(Manifest.SourceEntry.OK)) {
        skipped.add(f.path()); // unchanged size and mtime: trusted, still skipped
        entries.put(f.path(), p);
      } else if (r != null && r.binary()) {
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
      } else {
        boolean same =
            p != null
                && p.status().equals(Manifest.SourceEntry.OK)
                && (r == null || r.sha256().equals(p.sha256()));
        if (!same) {
          changed.add(f.path());
          expected.put(f.path(), scanned(f, r));
        }
        candidates.add(
            new FileGroups.File(
                f.path(),
                f.size(),
                same ? p.sha256() : r.sha256(),
                !same,
                same ? p.group() : null,
                same && p.group() == null));
      }
    }
    long packLimit =
        o.chunking() == ChunkingMode.FILE
            ? o.groupBytes()
            : Math.min(o.splitBytes(), o.groupBytes());
    FileGroups.Plan groups =
        FileGroups.plan(
            candidates, prevGroups, new FileGroups.Limits(packLimit, o.groupBytes(), OPEN_COST));

    // Which files are tokenized, and how many bytes: changed files on their own, and every member
    // of a written group.
    Map<String, FileGroups.Group> written = new LinkedHashMap<>();
    groups.written().forEach(g -> written.put(g.id(), g));
    Set<String> reusedGroups = new HashSet<>();
    groups.groups().stream()
        .filter(FileGroups.Group::reused)
        .forEach(g -> reusedGroups.add(g.id()));
    Map<String, InputLister.FileRef> refs = new HashMap<>();
    files.forEach(f -> refs.put(f.path(), f));
    List<String> tokenize = new ArrayList<>();
    List<String> reused = new ArrayList<>();
    long bytes = 0;
    for (FileGroups.File c : candidates) {
      String g = groups.groupOf().get(c.path());
      boolean tokenized = g == null ? c.changed() : written.containsKey(g);
      if (tokenized) {
        tokenize.add(c.path());
        bytes += c.size();
        if (!c.changed()) {
          expected.put(c.path(), prevByPath.get(c.path())); // re-tokenized with its group
        }
      } else {
        reused.add(c.path());
        InputLister.FileRef f = refs.get(c.path());
        entries.put(c.path(), prevByPath.get(c.path()).withListing(f.size(), f.mtime(), g));
      }
    }

    // Units: a changed file on its own is cut at its scan's split points; a written group into
    // units of whole files.
    long unitBytes = unitBytes(o, bytes, cores);
    List<WorkUnit> units = new ArrayList<>();
    Map<String, List<String>> unitsOfGroup = new LinkedHashMap<>();
    Set<String> groupsDone = new HashSet<>();
    for (String path : tokenize) {
      InputLister.FileRef f = refs.get(path);
      String g = groups.groupOf().get(path);
      if (g == null) {
        units.addAll(splitUnits(f, scans.get(path), o.chunking()));
      } else if (groupsDone.add(g)) {
        List<WorkUnit> gu = groupUnits(written.get(g), refs, expected, unitBytes, o.chunking());
        units.addAll(gu);
        unitsOfGroup.put(g, gu.stream().map(WorkUnit::shardPrefix).toList());
      }
    }

    // Shards of reused groups, in the previous manifest's order.
    Map<String, List<Manifest.ShardEntry>> reusedGroupShards = new HashMap<>();
    if (prev != null) {
      for (Manifest.ShardEntry s : prev.shards()) {
        Manifest.SourceEntry first = prevByPath.get(s.sources().get(0));
        String g = first == null ? null : first.group();
        if (g != null && reusedGroups.contains(g)) {
          reusedGroupShards.computeIfAbsent(g, k -> new ArrayList<>()).add(s);
        }
      }
    }
    Set<String> current = new HashSet<>(refs.keySet());
    List<String> removed =
        prevByPath.keySet().stream().filter(p -> !current.contains(p)).sorted().toList();
    PrepReport.Work work =
        new PrepReport.Work(
            files.size(),
            filesScanned,
            tokenize,
            changed,
            reused,
            removed,
            skipped,
            bytes,
            units.size(),
            groups.groups().size() - written.size(),
            written.size(),
            groups.dissolved().size());
    return new PrepPlan(
        files, entries, groups.groupOf(), reusedGroupShards, unitsOfGroup, expected, units, work);
  }

  /**
   * Bytes of a group per unit (one unit = one shard set): the group size on a big run, so a group
   * is one task and one set of shards; less when the run is small, so every core gets about four
   * units (like Spark's {@code maxSplitBytes}: min(max partition bytes, max(open cost, bytes per
   * core))). {@code --task-size-mb} fixes it.
   */
  static long unitBytes(PrepOptions o, long bytesToTokenize, int cores) {
    if (o.taskBytes() > 0) {
      return o.taskBytes();
    }
    long perCore = (bytesToTokenize + 4L * cores - 1) / (4L * Math.max(1, cores));
    return Math.min(o.groupBytes(), Math.max(MIN_UNIT_BYTES, perCore));
  }

  private static Manifest.SourceEntry scanned(InputLister.FileRef f, SourceScan.Result r) {
    return new Manifest.SourceEntry(
        f.path(),
        f.size(),
        f.mtime(),
        r.sha256(),
        Manifest.SourceEntry.OK,
        null,
        r.lines(),
        0,
        0,
        0,
        r.utf8Replacements(),
        r.firstInvalidUtf8Offset(),
        r.oversizedLines(),
        List.of());
  }

  /**
   * A file on its own: one unit per scan split in which a group starts. Splits where none starts
   * get no unit; their bytes are read by the unit before them, so a unit's size (for scheduling and
   * progress) runs to the next unit's start.
   */
  private static List<WorkUnit> splitUnits(
      InputLister.FileRef f, SourceScan.Result r, ChunkingMode mode) {
    String prefix = ShardNames.prefix(f.path(), r.sha256());
    List<SourceScan.SplitPoint> sp = r.splits();
    List<Integer> owners = new ArrayList<>();
    List<SplitChunker.Range> ranges = new ArrayList<>();
    for (int s = 0; s < sp.size(); s++) {
      long next = s + 1 < sp.size() ? sp.get(s + 1).startLine() : r.lines();
      SplitChunker.Range range =
          SplitChunker.Range.of(
              sp.get(s).startByte(), sp.get(s).startLine(), next, r.lines(), mode);
      if (!range.isEmpty()) {
        owners.add(s);
        ranges.add(range);
      }
    }
    List<WorkUnit> units = new ArrayList<>();
    for (int k = 0; k < owners.size(); k++) {
      long end = k + 1 < owners.size() ? ranges.get(k + 1).startByte() : r.size();
      WorkUnit.Piece piece =
          new WorkUnit.Piece(
              f.path(),
              f.size(),
              f.mtime(),
              r.sha256(),
              owners.get(k),
              ranges.get(k),
              end - ranges.get(k).startByte());
      units.add(
          new WorkUnit(
              String.format(Locale.ROOT, "%s-s%05d", prefix, owners.get(k)), null, List.of(piece)));
    }
    return units;
  }

  /**
   * A written group cut, in member order, into units of whole files of about equal weight, each at
   * most {@code unitBytes} unless one file alone is heavier. Files without lines get no piece.
   */
  private static List<WorkUnit> groupUnits(
      FileGroups.Group g,
      Map<String, InputLister.FileRef> refs,
      Map<String, Manifest.SourceEntry> expected,
      long unitBytes,
      ChunkingMode mode) {
    long n = Math.max(1, (g.weight() + unitBytes - 1) / unitBytes);
    long target = (g.weight() + n - 1) / n;
    List<List<WorkUnit.Piece>> cut = new ArrayList<>();
    List<WorkUnit.Piece> cur = new ArrayList<>();
    long w = 0;
    for (String path : g.members()) {
      InputLister.FileRef f = refs.get(path);
      Manifest.SourceEntry e = expected.get(path);
      long fw = f.size() + OPEN_COST;
      if (!cur.isEmpty() && (w + fw > unitBytes || w >= target)) {
        cut.add(cur);
        cur = new ArrayList<>();
        w = 0;
      }
      w += fw;
      SplitChunker.Range range = SplitChunker.Range.of(0, 0, e.lines(), e.lines(), mode);
      if (!range.isEmpty()) {
        cur.add(new WorkUnit.Piece(path, f.size(), f.mtime(), e.sha256(), 0, range, f.size()));
      }
    }
    cut.add(cur);
    List<WorkUnit> units = new ArrayList<>();
    for (List<WorkUnit.Piece> pieces : cut) {
      if (pieces.isEmpty()) {
        continue;
      }
      StringBuilder key = new StringBuilder();
      pieces.forEach(p -> key.append(p.path()).append('\n'));
      units.add(
          new WorkUnit(
              String.format(Locale.ROOT, "g-%s-%s", g.id(), ShardNames.hash8(key.toString())),
              g.id(),
              pieces));
    }
    return units;
  }
}
