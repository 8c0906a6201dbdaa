package dev.danlu.jobs.prep;

import dev.danlu.data.chunk.SourceScan;
import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.util.LongAccumulator;

/**
 * The driver side of prep for a corpus of a million small files, without tokenizing them: listing
 * (real tiny files, extrapolated), scanning (per-file cost of the executor's scan, on real tiny
 * files), planning (the real {@link PrepPlan} on a synthetic listing), the manifest (built from
 * synthetic task results by the job's own assembly, serialized and parsed), and a refresh on top of
 * it (no change, one added file). Prints time and driver heap growth per step, manifest size and
 * shard count (docs/operations.md, "Scale").
 *
 * <p>It lives in prep's package (in the bench module) to call the package-private planner.
 *
 * <pre>
 * bench/run.sh dev.danlu.jobs.prep.PrepScaleSim [--files 1000000] [--real-files 100000]
 *     [--mean-kb 120] [--cores 2]
 * </pre>
 */
public final class PrepScaleSim {
  private PrepScaleSim() {}

  public static void main(String[] args) throws Exception {
    int n = 1_000_000;
    int real = 100_000;
    double meanKb = 120; // 120 GB / 1e6 files
    int cores = 2;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--files" -> n = Integer.parseInt(args[++i]);
        case "--real-files" -> real = Integer.parseInt(args[++i]);
        case "--mean-kb" -> meanKb = Double.parseDouble(args[++i]);
        case "--cores" -> cores = Integer.parseInt(args[++i]);
        default -> throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    System.out.printf(
        Locale.ROOT,
        "PrepScaleSim: %d files of %.0f KB on average (%.1f GB), %d cores, max heap %d MB, load %.2f%n",
        n,
        meanKb,
        n * meanKb / 1048576,
        cores,
        Runtime.getRuntime().maxMemory() >> 20,
        java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    Configuration conf = new Configuration();

    // 1. Listing and scanning: real tiny files, then x (n / real).
    Path dir = Files.createTempDirectory("danlu-scalesim");
    try {
      for (int d = 0; d < real / 1000 + 1; d++) {
        Path sub = Files.createDirectories(dir.resolve(String.format("d%04d", d)));
        for (int f = 0; f < 1000 && d * 1000 + f < real; f++) {
          Files.writeString(sub.resolve(String.format("f%06d.txt", d * 1000 + f)), "一行。\n第二行。\n");
        }
      }
      long t = System.nanoTime();
      List<InputLister.FileRef> listed = InputLister.list(dir.toString(), "*.txt", conf);
      double listSecs = (System.nanoTime() - t) / 1e9;
      ScanTask scan = new ScanTask(32 << 20, 8 << 20, new LongAccumulator(), new LongAccumulator());
      t = System.nanoTime();
      int sample = Math.min(listed.size(), 20_000);
      for (int i = 0; i < sample; i++) {
        if (scan.scan(listed.get(i), conf).error() != null) {
          throw new IllegalStateException("scan failed");
        }
      }
      double scanSecs = (System.nanoTime() - t) / 1e9;
      System.out.printf(
          Locale.ROOT,
          "list %d real files: %.2f s (%.1f us/file) -> %d files: %.0f s on the driver%n",
          listed.size(),
          listSecs,
          listSecs / listed.size() * 1e6,
          n,
          listSecs / listed.size() * n);
      System.out.printf(
          Locale.ROOT,
          "scan %d real tiny files: %.2f s (%.1f us/file, open + read + hash) -> %d files: %.0f"
              + " core-seconds of per-file cost, %.0f s on %d cores%n",
          sample,
          scanSecs,
          scanSecs / sample * 1e6,
          n,
          scanSecs / sample * n,
          scanSecs / sample * n / cores,
          cores);
    } finally {
      try (Stream<Path> s = Files.walk(dir)) {
        s.sorted(Comparator.reverseOrder()).forEach(q -> q.toFile().delete());
      }
    }

    // 2. Planning on a synthetic listing: n files, sizes log-uniform around the mean.
    long heapStart = usedHeap();
    Random rnd = new Random(1);
    List<InputLister.FileRef> files = new ArrayList<>(n);
    Map<String, SourceScan.Result> scans = new HashMap<>();
    long bytes = 0;
    for (int i = 0; i < n; i++) {
      long size = Math.max(1, (long) (meanKb * 1024 * Math.exp(rnd.nextGaussian() * 0.8 - 0.32)));
      String path =
          String.format(
              Locale.ROOT, "hdfs://nn:8020/corpus/zh/%03d/%04d/doc-%07d.txt", i % 997, i / 997, i);
      files.add(new InputLister.FileRef(path, size, 1_700_000_000_000L + i));
      scans.put(
          path,
          new SourceScan.Result(
              size,
              sha(i),
              -1,
              -1,
              0,
              size / 300 + 1,
              0,
              List.of(new SourceScan.SplitPoint(0, 0))));
      bytes += size;
    }
    files.sort(Comparator.comparing(InputLister.FileRef::path));
    PrepOptions o =
        PrepOptions.parse(
            new String[] {
              "--input", "x", "--tokenizer", "t", "--block-size", "512", "--output", "y"
            });
    long heap0 = usedHeap();
    long t = System.nanoTime();
    PrepPlan plan = PrepPlan.build(o, null, files, n, scans, cores);
    double planSecs = (System.nanoTime() - t) / 1e9;
    System.out.printf(
        Locale.ROOT,
        "plan (new dataset): %.2f s; %d units, %d groups; heap: listing + scan results %d MB,"
            + " plan %d MB%n",
        planSecs,
        plan.units().size(),
        plan.work().groupsWritten(),
        (heap0 - heapStart) >> 20,
        (usedHeap() - heap0) >> 20);

    // 3. The manifest, from synthetic task results (one train part per unit, blocks per piece).
    List<WorkUnit.Result> results = new ArrayList<>();
    String dirName = "shards/00000000";
    for (WorkUnit u : plan.units()) {
      String part = dirName + "/train/" + u.shardPrefix() + "-p000.arrow";
      List<WorkUnit.PieceResult> pieces = new ArrayList<>();
      List<String> srcs = new ArrayList<>();
      long rows = 0;
      for (WorkUnit.Piece p : u.pieces()) {
        long tokens = p.fileSize() / 3;
        long blocks = tokens / 512;
        rows += blocks;
        pieces.add(
            new WorkUnit.PieceResult(
                p.path(),
                p.splitIndex(),
                p.range().endLine(),
                tokens,
                blocks,
                tokens - blocks * 512,
                p.fileSize(),
                blocks > 0 ? List.of(part) : List.of()));
        if (blocks > 0) {
          srcs.add(p.path());
        }
      }
      results.add(
          new WorkUnit.Result(
              u.shardPrefix(),
              pieces,
              rows > 0
                  ? List.of(
                      new Manifest.ShardEntry(
                          part, Manifest.TRAIN, rows, rows * 2048, sha(0), srcs))
                  : List.of()));
    }
    heap0 = usedHeap();
    t = System.nanoTime();
    List<Manifest.SourceEntry> sources = new ArrayList<>();
    List<Manifest.ShardEntry> shards = assembleForSim(plan, results, sources);
    Manifest m =
        new Manifest(
            Manifest.FORMAT_VERSION,
            1,
            "now",
            new Manifest.Params(
                sha(0), "t", 55296, 1, 2, 512, "group1000", 0.001, "replace", 8 << 20),
            new Manifest.Totals(n, 0, bytes, 0, 0, 0, 0, 0, 0, 0, 0),
            shards,
            sources);
    double asmSecs = (System.nanoTime() - t) / 1e9;
    t = System.nanoTime();
    byte[] json = ManifestIo.toJson(m);
    double writeSecs = (System.nanoTime() - t) / 1e9;
    t = System.nanoTime();
    Manifest back = ManifestIo.fromJson(json, "sim");
    double readSecs = (System.nanoTime() - t) / 1e9;
    System.out.printf(
        Locale.ROOT,
        "manifest: %d sources, %d shard files; assemble %.2f s, JSON %.1f MB (%.0f bytes/file),"
            + " write %.2f s, read %.2f s; the parsed manifest holds ~%d MB of heap%n",
        back.sources().size(),
        back.shards().size(),
        asmSecs,
        json.length / 1048576.0,
        (double) json.length / n,
        writeSecs,
        readSecs,
        (usedHeap() - heap0) >> 20);

    // 4. Refresh on top: nothing changed (every file trusted), then one file added.
    List<InputLister.FileRef> plus = new ArrayList<>(files);
    plus.add(new InputLister.FileRef("hdfs://nn:8020/corpus/zh/500/0000/new.txt", 50_000, 1));
    plus.sort(Comparator.comparing(InputLister.FileRef::path));
    t = System.nanoTime();
    PrepPlan same = PrepPlan.build(o, back, files, 0, Map.of(), cores);
    double sameSecs = (System.nanoTime() - t) / 1e9;
    Map<String, SourceScan.Result> oneScan =
        Map.of(
            "hdfs://nn:8020/corpus/zh/500/0000/new.txt",
            new SourceScan.Result(
                50_000, sha(-1), -1, -1, 0, 100, 0, List.of(new SourceScan.SplitPoint(0, 0))));
    t = System.nanoTime();
    PrepPlan added = PrepPlan.build(o, back, plus, 1, oneScan, cores);
    double addSecs = (System.nanoTime() - t) / 1e9;
    System.out.printf(
        Locale.ROOT,
        "refresh plan, no change: %.2f s, %d files to tokenize; one file added: %.2f s, %d files"
            + " (%.1f MB) re-tokenized in %d group(s), %d groups kept%n",
        sameSecs,
        same.work().tokenized().size(),
        addSecs,
        added.work().tokenized().size(),
        added.work().bytesTokenized() / 1048576.0,
        added.work().groupsWritten(),
        added.work().groupsReused());
    System.out.printf(Locale.ROOT, "peak heap used ~%d MB%n", usedHeap() >> 20);
  }

  /** The job's own assembly (PrepJob's private method), reached through a tiny wrapper. */
  private static List<Manifest.ShardEntry> assembleForSim(
      PrepPlan plan, List<WorkUnit.Result> results, List<Manifest.SourceEntry> sources)
      throws Exception {
    java.lang.reflect.Method m =
        PrepJob.class.getDeclaredMethod(
            "assemble", PrepPlan.class, List.class, Map.class, List.class);
    m.setAccessible(true);
    @SuppressWarnings("unchecked")
    List<Manifest.ShardEntry> out =
        (List<Manifest.ShardEntry>) m.invoke(null, plan, results, Map.of(), sources);
    return out;
  }

  private static String sha(int i) {
    return String.format(Locale.ROOT, "%064x", (long) i * 0x9E3779B97F4A7C15L & Long.MAX_VALUE);
  }

  private static long usedHeap() {
    for (int i = 0; i < 3; i++) {
      System.gc();
    }
    Runtime r = Runtime.getRuntime();
    return r.totalMemory() - r.freeMemory();
  }
}
