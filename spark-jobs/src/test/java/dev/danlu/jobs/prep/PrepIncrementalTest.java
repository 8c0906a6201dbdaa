package dev.danlu.jobs.prep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The nightly refresh: only new or changed files are tokenized, with the packing group they join;
 * every other group keeps its shards byte for byte; nothing changed, nothing done.
 */
class PrepIncrementalTest {
  static JavaSparkContext jsc;
  @TempDir Path tmp;

  @BeforeAll
  static void start() {
    jsc = PrepTestSupport.startSpark();
  }

  @AfterAll
  static void stop() {
    jsc.stop();
  }

  static final List<String> SPEECHES =
      List.of(
          "1790_george_washington_n.txt",
          "1801_thomas_jefferson_dr.txt",
          "1861_abraham_lincoln_r.txt",
          "1934_franklin_d_roosevelt_d.txt");

  Path input(int n) throws Exception {
    Path src = PrepTestSupport.corpus("english");
    Path in = Files.createDirectories(tmp.resolve("in"));
    for (String s : SPEECHES.subList(0, n)) {
      Files.copy(src.resolve(s), in.resolve(s));
    }
    return in;
  }

  PrepReport prep(Path in, Path out, String... extra) throws Exception {
    List<String> args =
        new java.util.ArrayList<>(
            List.of(
                "--input",
                in.toString(),
                "--tokenizer",
                PrepTestSupport.llamaModel().toString(),
                "--block-size",
                "256",
                "--output",
                out.toString(),
                "--validation-fraction",
                "0.1",
                "--progress-seconds",
                "0"));
    args.addAll(List.of(extra));
    return PrepTestSupport.prep(jsc, null, args.toArray(String[]::new));
  }

  static Set<String> shardFiles(Path out) throws Exception {
    try (Stream<Path> s = Files.walk(out.resolve("shards"))) {
      return s.filter(Files::isRegularFile)
          .map(p -> out.relativize(p).toString())
          .collect(Collectors.toSet());
    }
  }

  static String name(String path) {
    return path.substring(path.lastIndexOf('/') + 1);
  }

  @Test
  void addChangeTouchRemoveAndNoOp() throws Exception {
    Path in = input(3);
    Path out = tmp.resolve("out");
    PrepReport r1 = prep(in, out);
    assertTrue(r1.committed());
    assertEquals(1, r1.version());
    assertEquals(3, r1.tokenized().size());

    PrepReport same = prep(in, out);
    assertFalse(same.committed(), "no change: nothing committed");
    assertEquals(List.of(), same.tokenized(), "no change: no tokenization");
    assertEquals(0, same.filesScanned(), "unchanged size+mtime: not even read");

    // Add a file: it is new; the one (undersized) group of the three small files is reopened to
    // take it, so the four are tokenized together; totals add up to a fresh run's.
    Files.copy(
        PrepTestSupport.corpus("english").resolve(SPEECHES.get(3)), in.resolve(SPEECHES.get(3)));
    PrepReport r2 = prep(in, out);
    assertEquals(
        List.of(SPEECHES.get(3)), r2.changed().stream().map(PrepIncrementalTest::name).toList());
    assertEquals(4, r2.tokenized().size());
    assertEquals(1, r2.work().groupsWritten());
    assertEquals(1, r2.work().groupsDissolved());
    assertEquals(2, r2.version());
    Manifest fresh = prep(in, tmp.resolve("fresh")).manifest();
    assertEquals(fresh.totals(), r2.manifest().totals());
    assertEquals(fresh.shards(), r2.manifest().shards());
    assertEquals(fresh.sources(), r2.manifest().sources());
    Manifest.SourceEntry added =
        fresh.sources().stream()
            .filter(s -> s.path().endsWith(SPEECHES.get(3)))
            .findFirst()
            .orElseThrow();
    assertEquals(r1.manifest().totals().tokens() + added.tokens(), r2.manifest().totals().tokens());
    assertFalse(prep(in, out).committed());

    // Same size, same mtime, other bytes (a rewrite within the mtime granularity): trusted by
    // default, found by --rehash.
    Path sneaky = in.resolve(SPEECHES.get(3));
    FileTime mtime = Files.getLastModifiedTime(sneaky);
    byte[] bytes = Files.readAllBytes(sneaky);
    bytes[0] = (byte) (bytes[0] == 'X' ? 'Y' : 'X');
    Files.write(sneaky, bytes);
    Files.setLastModifiedTime(sneaky, mtime);
    assertEquals(List.of(), prep(in, out).tokenized());
    PrepReport rehashed = prep(in, out, "--rehash");
    assertEquals(4, rehashed.filesScanned());
    assertEquals(
        List.of(SPEECHES.get(3)),
        rehashed.changed().stream().map(PrepIncrementalTest::name).toList());
    assertEquals(3, rehashed.version());

    // Change one file: its group is re-tokenized, and its shards get new names.
    Path changed = in.resolve(SPEECHES.get(1));
    Files.writeString(changed, Files.readString(changed) + "\nOne more line for the refresh.\n");
    PrepReport r3 = prep(in, out);
    assertEquals(
        List.of(SPEECHES.get(1)), r3.changed().stream().map(PrepIncrementalTest::name).toList());
    assertEquals(4, r3.version());
    Set<String> before =
        rehashed.manifest().shards().stream()
            .map(Manifest.ShardEntry::path)
            .collect(Collectors.toSet());
    assertTrue(
        r3.manifest().shards().stream().noneMatch(s -> before.contains(s.path())),
        "new content, new shard names");

    // Touch a file without changing it: read and hashed, not tokenized; the mtime is recorded.
    Path touched = in.resolve(SPEECHES.get(0));
    Files.setLastModifiedTime(
        touched, FileTime.fromMillis(Files.getLastModifiedTime(touched).toMillis() + 60_000));
    PrepReport r4 = prep(in, out);
    assertEquals(1, r4.filesScanned());
    assertEquals(List.of(), r4.tokenized());
    assertTrue(r4.committed());
    assertEquals(r3.manifest().shards(), r4.manifest().shards());

    // Remove a file: dropped from the manifest; the rest of its group is written again without it.
    Files.delete(in.resolve(SPEECHES.get(2)));
    PrepReport r5 = prep(in, out);
    assertEquals(List.of(), r5.changed());
    assertEquals(3, r5.tokenized().size());
    assertEquals(1, r5.removed().size());
    assertEquals(3, r5.manifest().sources().size());
    assertTrue(
        r5.manifest().shards().stream()
            .noneMatch(s -> s.sources().stream().anyMatch(x -> x.endsWith(SPEECHES.get(2)))));
    long sum = r5.manifest().sources().stream().mapToLong(Manifest.SourceEntry::blocks).sum();
    assertEquals(sum, r5.manifest().totals().blocks());
    assertEquals(sum, r5.manifest().shards().stream().mapToLong(Manifest.ShardEntry::rows).sum());

    // Older versions are kept; manifest.json is the newest.
    for (long v = 2; v <= 6; v++) {
      assertTrue(Files.exists(out.resolve(ManifestIo.versionPath(v))), "version " + v + " kept");
    }
    assertFalse(Files.exists(out.resolve(ManifestIo.versionPath(1))), "beyond --keep-versions 5");
    assertEquals(6, ManifestIo.readCurrent(out).version());
    // The blocks still equal a fresh run's on the same input.
    prep(in, tmp.resolve("fresh2"));
    assertEquals(
        PrepTestSupport.blocks(tmp.resolve("fresh2"), null), PrepTestSupport.blocks(out, null));
  }

  /** sha256 of every shard file on disk, by relative path. */
  static java.util.Map<String, String> shardHashes(Path out) throws Exception {
    java.util.Map<String, String> h = new java.util.TreeMap<>();
    for (String f : shardFiles(out)) {
      h.put(
          f,
          java.util.HexFormat.of()
              .formatHex(
                  java.security.MessageDigest.getInstance("SHA-256")
                      .digest(Files.readAllBytes(out.resolve(f)))));
    }
    return h;
  }

  /**
   * The acceptance of packing: many small files share a few groups; adding one file rewrites the
   * shards of at most one group and leaves every other shard byte-identical; a re-run with no
   * change writes nothing; the blocks equal a fresh run's.
   */
  @Test
  void addingAFileRewritesAtMostOneGroup() throws Exception {
    Path src = PrepTestSupport.corpus("english");
    Path in = Files.createDirectories(tmp.resolve("many"));
    List<String> names;
    try (Stream<Path> s = Files.list(src)) {
      names =
          s.map(p -> p.getFileName().toString())
              .filter(n -> n.matches("1[78]\\d\\d_.*\\.txt"))
              .sorted()
              .limit(25)
              .toList();
    }
    for (String n : names.subList(0, 24)) {
      Files.copy(src.resolve(n), in.resolve(n));
    }
    Path out = tmp.resolve("out");
    String[] small = {"--group-size-mb", "0.6", "--task-size-mb", "0.6"};
    PrepReport r1 = prep(in, out, small);
    Manifest m1 = r1.manifest();
    long groups = m1.sources().stream().map(Manifest.SourceEntry::group).distinct().count();
    assertTrue(groups >= 3, groups + " groups");
    assertTrue(m1.sources().stream().allMatch(x -> x.group() != null), "all small: all grouped");
    assertTrue(m1.shards().size() < names.size(), m1.shards().size() + " shards for 24 files");
    for (Manifest.ShardEntry sh : m1.shards()) {
      for (String x : sh.sources()) {
        Manifest.SourceEntry e =
            m1.sources().stream().filter(y -> y.path().equals(x)).findFirst().orElseThrow();
        assertTrue(e.shards().contains(sh.path()), x + " holds rows of " + sh.path());
      }
    }
    java.util.Map<String, String> h1 = shardHashes(out);

    PrepReport same = prep(in, out, small);
    assertFalse(same.committed());
    assertEquals(h1, shardHashes(out), "a no-change run writes nothing");
    assertEquals(1, ManifestIo.readCurrent(out).version());

    Files.copy(src.resolve(names.get(24)), in.resolve(names.get(24)));
    PrepReport r2 = prep(in, out, small);
    assertEquals(1, r2.changed().size());
    assertTrue(r2.work().groupsDissolved() <= 1, "dissolved " + r2.work().groupsDissolved());
    assertEquals(1, r2.work().groupsWritten());
    java.util.Map<String, String> h2 = shardHashes(out);
    Set<String> kept =
        m1.shards().stream()
            .map(Manifest.ShardEntry::path)
            .filter(p -> r2.manifest().shards().stream().anyMatch(x -> x.path().equals(p)))
            .collect(Collectors.toSet());
    String written =
        r2.manifest().sources().stream()
            .filter(x -> x.path().endsWith(names.get(24)))
            .findFirst()
            .orElseThrow()
            .group();
    for (Manifest.ShardEntry sh : m1.shards()) {
      boolean ofRewrittenGroup =
          r2.manifest().shards().stream().noneMatch(x -> x.path().equals(sh.path()));
      if (!ofRewrittenGroup) {
        assertEquals(h1.get(sh.path()), h2.get(sh.path()), "byte-identical: " + sh.path());
      }
    }
    assertTrue(kept.size() >= m1.shards().size() - 2, kept.size() + " of " + m1.shards().size());
    for (Manifest.ShardEntry sh : r2.manifest().shards()) {
      if (!kept.contains(sh.path())) {
        assertTrue(sh.path().contains("g-" + written), sh.path() + " new, of the written group");
      }
    }
    prep(in, tmp.resolve("fresh"), small);
    assertEquals(
        PrepTestSupport.blocks(tmp.resolve("fresh"), null), PrepTestSupport.blocks(out, null));
  }

  @Test
  void refusesOtherTokenizerOrBlockSizeUnlessRebuild() throws Exception {
    Path in = input(2);
    Path out = tmp.resolve("out");
    prep(in, out);
    PrepJob.PrepException e =
        assertThrows(PrepJob.PrepException.class, () -> prep(in, out, "--block-size", "128"));
    assertTrue(e.getMessage().contains("block size 256 vs 128"), e.getMessage());
    assertTrue(e.getMessage().contains("--rebuild"), e.getMessage());
    // resolved outside assertThrows: without ../shared the test skips instead of failing there
    String chinese = PrepTestSupport.chineseModel().toString();
    e =
        assertThrows(
            PrepJob.PrepException.class,
            () ->
                PrepTestSupport.prep(
                    jsc,
                    null,
                    "--input",
                    in.toString(),
                    "--tokenizer",
                    chinese,
                    "--block-size",
                    "256",
                    "--output",
                    out.toString(),
                    "--validation-fraction",
                    "0.1",
                    "--progress-seconds",
                    "0"));
    assertTrue(e.getMessage().contains("tokenizer sha256"), e.getMessage());
    assertEquals(1, ManifestIo.readCurrent(out).version(), "a refused run commits nothing");

    Manifest v1 = ManifestIo.readCurrent(out);
    PrepReport rebuilt = prep(in, out, "--block-size", "128", "--rebuild");
    assertEquals(2, rebuilt.tokenized().size());
    assertEquals(2, rebuilt.version());
    assertEquals(128, ManifestIo.readCurrent(out).params().blockSize());
    // Version 1 is still kept and intact: a rebuild writes new files, never over old ones.
    for (Manifest.ShardEntry s : v1.shards()) {
      byte[] bytes = Files.readAllBytes(out.resolve(s.path()));
      assertEquals(
          s.sha256(),
          java.util.HexFormat.of()
              .formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(bytes)),
          s.path());
    }
    // With --keep-versions 1 the next commit collects version 1 and its block-256 shards.
    Files.copy(
        PrepTestSupport.corpus("english").resolve(SPEECHES.get(2)), in.resolve(SPEECHES.get(2)));
    PrepReport v3 = prep(in, out, "--block-size", "128", "--keep-versions", "1");
    assertEquals(3, v3.version());
    assertEquals(
        v3.manifest().shards().stream().map(Manifest.ShardEntry::path).collect(Collectors.toSet()),
        shardFiles(out));
    assertFalse(Files.exists(out.resolve(ManifestIo.versionPath(1))));
    assertFalse(Files.exists(out.resolve(ManifestIo.versionPath(2))));
  }

  @Test
  void dryRunPrintsThePlanAndWritesNothing() throws Exception {
    Path in = input(2);
    Path out = tmp.resolve("out");
    prep(in, out);
    Set<String> before = shardFiles(out);
    Files.copy(
        PrepTestSupport.corpus("english").resolve(SPEECHES.get(2)), in.resolve(SPEECHES.get(2)));
    PrepReport dry = prep(in, out, "--dry-run");
    assertTrue(dry.dryRun());
    assertFalse(dry.committed());
    // The new file reopens the two files' group: three files tokenized, one of them new.
    assertTrue(dry.plan().contains("tokenize 3 files"), dry.plan());
    assertTrue(
        dry.plan().contains("(1 new or changed files; 1 packing groups written"), dry.plan());
    assertTrue(
        dry.plan()
            .contains(
                "+ "
                    + in.resolve(SPEECHES.get(2)).toUri().toString().replace("file:///", "file:/")),
        dry.plan());
    assertEquals(1, ManifestIo.readCurrent(out).version());
    assertEquals(before, shardFiles(out));
  }

  @Test
  void strayFilesFromDeadRunsAreCollectedAfterTheNextCommit() throws Exception {
    Path in = input(1);
    Path out = tmp.resolve("out");
    prep(in, out);
    Files.createDirectories(out.resolve("shards/train"));
    Path stray = out.resolve("shards/train/.deadbeef-p000.arrow.tmp-3.0.0.7");
    Files.writeString(stray, "partial");
    Path orphan = out.resolve("shards/train/00000000-0000000000000000-s00000-p000.arrow");
    Files.writeString(orphan, "orphan");
    Files.copy(
        PrepTestSupport.corpus("english").resolve(SPEECHES.get(1)), in.resolve(SPEECHES.get(1)));
    PrepReport r = prep(in, out);
    assertTrue(r.committed());
    assertFalse(Files.exists(stray));
    assertFalse(Files.exists(orphan));
    // What is left: the shards of the kept versions (1 and 2), nothing else.
    Set<String> kept = new java.util.HashSet<>();
    for (long v = 1; v <= 2; v++) {
      byte[] json = Files.readAllBytes(out.resolve(ManifestIo.versionPath(v)));
      ManifestIo.fromJson(json, "v" + v).shards().forEach(x -> kept.add(x.path()));
    }
    assertEquals(kept, shardFiles(out));
    assertTrue(
        kept.containsAll(
            r.manifest().shards().stream()
                .map(Manifest.ShardEntry::path)
                .collect(Collectors.toSet())));
  }
}
