package dev.danlu.jobs.prep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import java.io.FileNotFoundException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Each kind of bad input ends in a clear error or an accounted policy, never a silent drop. */
class PrepBadInputTest {
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

  PrepReport prep(Path in, Path out, String... extra) throws Exception {
    List<String> args =
        new java.util.ArrayList<>(
            List.of(
                "--input", in.toString(),
                "--tokenizer", PrepTestSupport.llamaModel().toString(),
                "--block-size", "16",
                "--output", out.toString(),
                "--progress-seconds", "0"));
    args.addAll(List.of(extra));
    return PrepTestSupport.prep(jsc, null, args.toArray(String[]::new));
  }

  static Manifest.SourceEntry source(Manifest m, String name) {
    return m.sources().stream()
        .filter(s -> s.path().endsWith("/" + name))
        .findFirst()
        .orElseThrow();
  }

  static byte[] invalidUtf8() {
    byte[] head = "good line one\nbad ".getBytes(StandardCharsets.UTF_8);
    byte[] tail = " line\nlast line\n".getBytes(StandardCharsets.UTF_8);
    byte[] b = Arrays.copyOf(head, head.length + 2 + tail.length);
    b[head.length] = (byte) 0xff; // never valid in UTF-8
    b[head.length + 1] = (byte) 0xc3; // a lead byte followed by ASCII: truncated
    System.arraycopy(tail, 0, b, head.length + 2, tail.length);
    return b;
  }

  @Test
  void invalidUtf8IsReplacedAndCountedByDefault() throws Exception {
    Path in = Files.createDirectories(tmp.resolve("in"));
    Files.write(in.resolve("bad.txt"), invalidUtf8());
    Manifest m = prep(in, tmp.resolve("out")).manifest();
    Manifest.SourceEntry s = source(m, "bad.txt");
    assertEquals(2, s.utf8Replacements());
    assertEquals(18, s.firstInvalidUtf8Offset());
    assertEquals(3, s.lines());
    assertEquals(2, m.totals().utf8Replacements());
  }

  @Test
  void invalidUtf8FailsWithFileAndOffsetUnderFailPolicy() throws Exception {
    Path in = Files.createDirectories(tmp.resolve("in"));
    Files.write(in.resolve("bad.txt"), invalidUtf8());
    Files.writeString(in.resolve("fine.txt"), "all good\n");
    Path out = tmp.resolve("out");
    PrepJob.PrepException e =
        assertThrows(PrepJob.PrepException.class, () -> prep(in, out, "--utf8", "fail"));
    assertTrue(e.getMessage().contains("bad.txt: invalid UTF-8 at byte offset 18"), e.getMessage());
    assertTrue(!e.getMessage().contains("fine.txt"), e.getMessage());
    assertTrue(Files.notExists(out.resolve(ManifestIo.CURRENT)), "nothing committed");
  }

  @Test
  void binaryEmptyAndOversizedInputsAreAccounted() throws Exception {
    Path in = Files.createDirectories(tmp.resolve("in"));
    Files.write(in.resolve("binary.txt"), new byte[] {'P', 'K', 3, 4, 0, 0, 'x', '\n'});
    Files.write(in.resolve("empty.txt"), new byte[0]);
    Files.writeString(in.resolve("blank.txt"), "\n\r\n\n");
    // One line of 100 MB between two normal lines: streamed, skipped, counted; no OOM.
    Path huge = in.resolve("huge-line.txt");
    try (OutputStream o = Files.newOutputStream(huge)) {
      o.write("before the long line\n".getBytes(StandardCharsets.UTF_8));
      byte[] mb = new byte[1 << 20];
      Arrays.fill(mb, (byte) 'a');
      for (int i = 0; i < 100; i++) {
        o.write(mb);
      }
      o.write("\nafter the long line\n".getBytes(StandardCharsets.UTF_8));
    }
    StringBuilder log = new StringBuilder();
    PrepReport r =
        PrepTestSupport.prep(
            jsc,
            log,
            "--input",
            in.toString(),
            "--tokenizer",
            PrepTestSupport.llamaModel().toString(),
            "--block-size",
            "4",
            "--output",
            tmp.resolve("out").toString(),
            "--split-size-mb",
            "16",
            "--progress-seconds",
            "0");
    Manifest m = r.manifest();
    Manifest.SourceEntry bin = source(m, "binary.txt");
    assertEquals(Manifest.SourceEntry.SKIPPED, bin.status());
    assertEquals("binary: NUL byte at offset 4", bin.skipReason());
    assertNull(bin.sha256());
    assertTrue(
        log.toString().contains("binary.txt: skipped, binary: NUL byte at offset 4"),
        log.toString());
    assertEquals(1, m.totals().skippedFiles());
    // The console's final progress line accounts for every byte of the tokenized files.
    assertTrue(log.toString().contains("prep: tokenize 1/1 units"), log.toString());
    assertTrue(log.toString().contains("(100%)"), log.toString());

    Manifest.SourceEntry empty = source(m, "empty.txt");
    assertEquals(Manifest.SourceEntry.OK, empty.status());
    assertEquals(0, empty.lines());
    assertEquals(List.of(), empty.shards());
    assertEquals(0, source(m, "blank.txt").lines());

    Manifest.SourceEntry h = source(m, "huge-line.txt");
    assertEquals(2, h.lines());
    assertEquals(1, h.oversizedLines());
    assertEquals(1, m.totals().oversizedLines());
    assertTrue(h.blocks() > 0);
    // Seven 16 MB splits, but only the first starts a group (the file has 2 counted lines): the
    // others own no lines and get no task. The one task streams through the long line.
    assertEquals(1, r.tasks());

    // A re-run trusts unchanged size+mtime: the skip is remembered, nothing is read again.
    PrepReport again =
        PrepTestSupport.prep(
            jsc,
            null,
            "--input",
            in.toString(),
            "--tokenizer",
            PrepTestSupport.llamaModel().toString(),
            "--block-size",
            "4",
            "--output",
            tmp.resolve("out").toString(),
            "--split-size-mb",
            "16",
            "--progress-seconds",
            "0");
    assertEquals(0, again.filesScanned());
    assertEquals(List.of(bin.path()), again.skipped());
  }

  @Test
  void missingInputAndUnreadableFilesAreClearErrors() throws Exception {
    Path missing = tmp.resolve("no-such-dir");
    FileNotFoundException e =
        assertThrows(FileNotFoundException.class, () -> prep(missing, tmp.resolve("out")));
    assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());

    Path in = Files.createDirectories(tmp.resolve("in"));
    Files.writeString(in.resolve("ok.txt"), "fine\n");
    Files.createSymbolicLink(in.resolve("dangling.txt"), tmp.resolve("gone.txt"));
    Exception e2 = assertThrows(java.io.IOException.class, () -> prep(in, tmp.resolve("out")));
    assertTrue(e2.getMessage().contains("dangling.txt"), e2.getMessage());
    Files.delete(in.resolve("dangling.txt"));

    // A file that exists but cannot be read, even by root: /proc/self/mem fails at offset 0.
    Path mem = Path.of("/proc/self/mem");
    org.junit.jupiter.api.Assumptions.assumeTrue(Files.exists(mem), "skipped: no /proc/self/mem");
    Files.createSymbolicLink(in.resolve("unreadable.txt"), mem);
    PrepJob.PrepException e3 =
        assertThrows(PrepJob.PrepException.class, () -> prep(in, tmp.resolve("out")));
    assertTrue(e3.getMessage().contains("cannot read 1 input file(s)"), e3.getMessage());
    assertTrue(e3.getMessage().contains("unreadable.txt"), e3.getMessage());
    assertTrue(Files.notExists(tmp.resolve("out").resolve(ManifestIo.CURRENT)));
  }
}
