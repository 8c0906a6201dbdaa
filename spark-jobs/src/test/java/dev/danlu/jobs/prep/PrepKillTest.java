package dev.danlu.jobs.prep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * kill -9 in the middle of a refresh: the last committed manifest stays valid and readable, and the
 * next run produces the same manifest (timestamps aside) as an uninterrupted run.
 */
class PrepKillTest {
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

  List<String> args(Path in, Path out) {
    return List.of(
        "--input", in.toString(),
        "--tokenizer", PrepTestSupport.chineseModel().toString(),
        "--block-size", "64",
        "--output", out.toString(),
        "--validation-fraction", "0.05",
        "--split-size-mb", "0.1",
        "--shard-size-mb", "0.01",
        "--progress-seconds", "0");
  }

  /** The prep CLI in a child JVM with this test's class path and JVM flags. */
  Process startChild(Path in, Path out, Path log) throws Exception {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (a.startsWith("--add-opens")
          || a.startsWith("-Dio.netty")
          || a.startsWith("-Djdk.reflect")) {
        cmd.add(a);
      }
    }
    cmd.add("-Xmx1g");
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(PrepCli.class.getName());
    cmd.addAll(args(in, out));
    cmd.addAll(List.of("--master", "local[1]"));
    ProcessBuilder pb =
        new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
    pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
    return pb.start();
  }

  static List<Path> shardFiles(Path out) throws Exception {
    if (!Files.isDirectory(out.resolve("shards"))) {
      return List.of();
    }
    try (Stream<Path> s = Files.walk(out.resolve("shards"))) {
      return s.filter(Files::isRegularFile).toList();
    }
  }

  @Test
  void killMidRunKeepsLastCommitAndTheRerunMatchesAnUninterruptedRun() throws Exception {
    Path src = PrepTestSupport.corpus("chinese");
    Path in = Files.createDirectories(tmp.resolve("in"));
    Files.copy(src.resolve("dist_lunyu_lunyu.txt"), in.resolve("lunyu.txt"));
    Files.copy(src.resolve("dist_caocaoshiji_caocao.txt"), in.resolve("caocao.txt"));
    Path out = tmp.resolve("out");
    PrepReport v1 = PrepTestSupport.prep(jsc, null, args(in, out).toArray(String[]::new));
    assertEquals(1, v1.version());
    int v1Shards = shardFiles(out).size();

    // The nightly delta: 4000 lines (~1 MB), tiny shards, one core: slow enough to be killed.
    List<String> delta;
    try (Stream<String> lines = Files.lines(src.resolve("dist_yuanqu_yuanqu.txt"))) {
      delta = lines.limit(4000).toList();
    }
    Files.write(in.resolve("yuanqu.txt"), delta, StandardCharsets.UTF_8);
    Path log = tmp.resolve("child.log");
    long t0 = System.nanoTime();
    Process child = startChild(in, out, log);
    boolean killedMidRun = false;
    try {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
      while (System.nanoTime() < deadline && child.isAlive()) {
        if (shardFiles(out).size() > v1Shards + 2) { // the child is writing new shards
          child.destroyForcibly(); // SIGKILL
          killedMidRun = true;
          break;
        }
        Thread.sleep(5);
      }
      child.waitFor(30, TimeUnit.SECONDS);
    } finally {
      child.destroyForcibly();
    }
    System.out.printf("kill test: child killed after %.1fs%n", (System.nanoTime() - t0) / 1e9);
    String childLog = Files.readString(log, StandardCharsets.UTF_8);
    assertTrue(killedMidRun, "the child finished before it could be killed:\n" + childLog);
    assertTrue(!childLog.contains("committed version 2"), "killed before its commit:\n" + childLog);

    // The last commit is intact: version 1, every shard readable with the checked metadata.
    Manifest after = ManifestIo.readCurrent(out);
    assertEquals(v1.manifest(), after);
    assertEquals(
        PrepTestSupport.blocks(out, v1.manifest().params().tokenizerSha256()).size(),
        v1.manifest().totals().blocks());
    assertTrue(shardFiles(out).size() > v1Shards, "the dead run left files behind");

    // The next run completes the work; an uninterrupted run from the same start agrees.
    PrepReport resumed = PrepTestSupport.prep(jsc, null, args(in, out).toArray(String[]::new));
    assertEquals(
        List.of("yuanqu.txt"),
        resumed.tokenized().stream().map(p -> Path.of(p).getFileName().toString()).toList());
    Path ref = tmp.resolve("ref");
    Path aside = tmp.resolve("yuanqu.aside");
    Files.move(in.resolve("yuanqu.txt"), aside);
    PrepTestSupport.prep(jsc, null, args(in, ref).toArray(String[]::new));
    Files.move(aside, in.resolve("yuanqu.txt")); // same bytes and mtime as the resumed run saw
    PrepReport uninterrupted =
        PrepTestSupport.prep(jsc, null, args(in, ref).toArray(String[]::new));
    Manifest a = resumed.manifest().withoutTimestamps();
    Manifest b = uninterrupted.manifest().withoutTimestamps();
    assertEquals(a, b, "same manifest, timestamps aside");
    // The dead run's leftovers are gone: on disk exactly the shards of the kept versions.
    assertEquals(
        Stream.concat(v1.manifest().shards().stream(), resumed.manifest().shards().stream())
            .map(s -> out.resolve(s.path()))
            .collect(Collectors.toSet()),
        new java.util.HashSet<>(shardFiles(out)));
  }
}
