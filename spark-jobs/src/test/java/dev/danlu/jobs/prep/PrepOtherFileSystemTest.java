package dev.danlu.jobs.prep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Local output is written without Hadoop's per-file {@code chmod} process (java.nio); every other
 * Hadoop file system must keep working through Hadoop's API. This runs prep on a file system of
 * another scheme ({@link OtherSchemeFs}) and checks that Hadoop created the files and that the
 * result equals a {@code file:} run's.
 */
class PrepOtherFileSystemTest {
  static JavaSparkContext jsc;
  @TempDir Path tmp;

  @BeforeAll
  static void start() {
    jsc = PrepTestSupport.startSpark();
    jsc.hadoopConfiguration()
        .set("fs." + OtherSchemeFs.SCHEME + ".impl", OtherSchemeFs.class.getName());
  }

  @AfterAll
  static void stop() {
    jsc.stop();
  }

  PrepReport prep(String in, String out, String... extra) throws Exception {
    List<String> args =
        new java.util.ArrayList<>(
            List.of(
                "--input",
                in,
                "--tokenizer",
                PrepTestSupport.llamaModel().toString(),
                "--block-size",
                "128",
                "--output",
                out,
                "--validation-fraction",
                "0.2",
                "--task-size-mb",
                "0.05",
                "--progress-seconds",
                "0"));
    args.addAll(List.of(extra));
    return PrepTestSupport.prep(jsc, null, args.toArray(String[]::new));
  }

  @Test
  void otherSchemeGoesThroughHadoopAndGivesTheSameDataset() throws Exception {
    Path src = PrepTestSupport.corpus("english");
    Path in = Files.createDirectories(tmp.resolve("in"));
    for (String n :
        List.of(
            "1790_george_washington_n.txt",
            "1801_thomas_jefferson_dr.txt",
            "1861_abraham_lincoln_r.txt")) {
      Files.copy(src.resolve(n), in.resolve(n));
    }
    Path local = tmp.resolve("local");
    Path other = tmp.resolve("other");
    Manifest a = prep(in.toString(), local.toString()).manifest();
    int creates = OtherSchemeFs.CREATES.get();
    int mkdirs = OtherSchemeFs.MKDIRS.get();
    assertEquals(0, creates, "file: output never goes through Hadoop's create");
    PrepReport r = prep(OtherSchemeFs.SCHEME + "://" + in, OtherSchemeFs.SCHEME + "://" + other);
    assertTrue(r.committed());
    Manifest b = ManifestIo.readCurrent(other);
    // every shard part and the two manifest files were created by Hadoop for the other scheme
    assertEquals(b.shards().size() + 2, OtherSchemeFs.CREATES.get() - creates);
    assertTrue(OtherSchemeFs.MKDIRS.get() > mkdirs, "directories made through Hadoop");
    assertTrue(b.shards().size() > 2, b.shards().size() + " shards");
    assertTrue(b.sources().stream().allMatch(s -> s.path().startsWith(OtherSchemeFs.SCHEME + ":")));
    assertEquals(a.totals(), b.totals());
    // (not byte-identical: group ids, in the shard metadata, hash the source URIs)
    assertEquals(
        a.shards().stream().map(Manifest.ShardEntry::rows).toList(),
        b.shards().stream().map(Manifest.ShardEntry::rows).toList());
    assertEquals(PrepTestSupport.blocks(local, null), PrepTestSupport.blocks(other, null));
    // and the refresh works there too: nothing changed, nothing committed
    assertFalse(
        prep(OtherSchemeFs.SCHEME + "://" + in, OtherSchemeFs.SCHEME + "://" + other).committed());
  }
}
