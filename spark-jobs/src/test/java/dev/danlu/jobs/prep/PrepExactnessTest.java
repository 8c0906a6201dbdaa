package dev.danlu.jobs.prep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import dev.danlu.data.tokenizer.TextTokenizer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The acceptance check: blocks written by the Spark job on real Chinese and English text equal, as
 * a multiset, the blocks computed from {@code spm_encode} ids with the group-of-1000 rule (and the
 * whole-file rule), with split sizes small enough that groups straddle task boundaries.
 */
class PrepExactnessTest {
  static JavaSparkContext jsc;
  @TempDir Path tmp;

  static final List<String> JOB_DESCRIPTIONS = new java.util.concurrent.CopyOnWriteArrayList<>();

  @BeforeAll
  static void start() {
    jsc = PrepTestSupport.startSpark();
    jsc.sc()
        .addSparkListener(
            new org.apache.spark.scheduler.SparkListener() {
              @Override
              public void onJobStart(org.apache.spark.scheduler.SparkListenerJobStart e) {
                JOB_DESCRIPTIONS.add(
                    String.valueOf(e.properties().getProperty("spark.job.description")));
              }
            });
  }

  @AfterAll
  static void stop() {
    jsc.stop();
  }

  /**
   * Reference blocks: spm_encode ids per line, BOS/EOS, grouped per file, cut, remainders dropped.
   */
  static List<String> referenceBlocks(
      Path model, List<Path> files, int blockSize, long group, Path work, long[] totals)
      throws Exception {
    List<String> all = new ArrayList<>();
    List<Integer> counts = new ArrayList<>();
    for (Path f : files) {
      List<String> lines = PrepTestSupport.exampleLines(f);
      all.addAll(lines);
      counts.add(lines.size());
    }
    List<int[]> ids = PrepTestSupport.spmEncode(model, all, work);
    List<String> blocks = new ArrayList<>();
    int at = 0;
    for (int n : counts) {
      for (long g = 0; g < n; g += group) {
        List<Integer> cat = new ArrayList<>();
        for (long i = g; i < Math.min(n, g + group); i++) {
          cat.add(1);
          for (int id : ids.get(at + (int) i)) {
            cat.add(id);
          }
          cat.add(2);
        }
        int whole = cat.size() / blockSize * blockSize;
        for (int s = 0; s < whole; s += blockSize) {
          blocks.add(
              Arrays.toString(
                  cat.subList(s, s + blockSize).stream().mapToInt(Integer::intValue).toArray()));
        }
        totals[0] += cat.size();
        totals[1] += cat.size() - whole;
      }
      at += n;
    }
    blocks.sort(null);
    return blocks;
  }

  static Path chineseSample(Path dir) throws Exception {
    Path src = PrepTestSupport.corpus("chinese");
    Path in = Files.createDirectories(dir.resolve("zh"));
    for (String name :
        List.of(
            "dist_quantangshi_唐诗三百首.txt",
            "dist_caocaoshiji_caocao.txt",
            "dist_lunyu_lunyu.txt",
            "dist_songci_宋词三百首.txt",
            "dist_quantangshi_error_poet.song.1000.txt")) {
      Files.copy(src.resolve(name), in.resolve(name));
    }
    // A 2600-line prefix of the largest file: several groups of 1000, split across many tasks.
    try (Stream<String> lines = Files.lines(src.resolve("dist_yuanqu_yuanqu.txt"))) {
      Files.write(
          in.resolve("yuanqu-part.txt"), lines.limit(2600).toList(), StandardCharsets.UTF_8);
    }
    return in;
  }

  static Path englishSample(Path dir) throws Exception {
    Path src = PrepTestSupport.corpus("english");
    Path in = Files.createDirectories(dir.resolve("en"));
    // Moby Dick has many empty lines; one SOTU speech converted to CRLF line ends.
    Files.copy(src.resolve("moby-dick.txt"), in.resolve("moby-dick.txt"));
    String speech = Files.readString(src.resolve("1790_george_washington_n.txt"));
    Files.writeString(in.resolve("washington-crlf.txt"), speech.replace("\n", "\r\n"));
    Files.copy(src.resolve("1863_abraham_lincoln_r.txt"), in.resolve("1863_abraham_lincoln_r.txt"));
    return in;
  }

  void check(Path model, Path in, int blockSize, String chunking, String splitMb) throws Exception {
    Path out = tmp.resolve("out-" + blockSize + "-" + chunking);
    PrepReport r =
        PrepTestSupport.prep(
            jsc,
            null,
            "--input",
            in.toString(),
            "--tokenizer",
            model.toString(),
            "--block-size",
            Integer.toString(blockSize),
            "--output",
            out.toString(),
            "--chunking",
            chunking,
            "--validation-fraction",
            "0.2",
            "--split-size-mb",
            splitMb,
            "--shard-size-mb",
            "0.05",
            "--progress-seconds",
            "0");
    List<Path> files;
    try (Stream<Path> s = Files.list(in)) {
      files = s.sorted().toList();
    }
    if (chunking.equals("group1000")) {
      assertTrue(r.tasks() > files.size(), "big files were split across tasks: " + r.tasks());
    }
    long[] totals = new long[2];
    List<String> expected =
        referenceBlocks(
            model, files, blockSize, chunking.equals("file") ? Long.MAX_VALUE : 1000, tmp, totals);
    String sha;
    try (TextTokenizer t = TextTokenizer.load(model)) {
      sha = t.sha256();
    }
    List<String> got = PrepTestSupport.blocks(out, sha);
    assertTrue(expected.size() > 100, "enough blocks to mean something: " + expected.size());
    assertEquals(expected.size(), got.size(), "block count");
    assertEquals(expected, got, "blocks as a multiset");
    Manifest m = ManifestIo.readCurrent(out);
    assertEquals(totals[0], m.totals().tokens());
    assertEquals(totals[1], m.totals().droppedTokens());
    assertEquals(m.totals().tokens(), m.totals().blocks() * blockSize + m.totals().droppedTokens());
    assertTrue(m.totals().validationBlocks() > 0 && m.totals().trainBlocks() > 0);
    // Every shard the job wrote reads back the same with an independent Arrow implementation.
    nodeReadsTheSameRows(out, m);
    // What the Spark UI shows for the two jobs.
    assertTrue(
        JOB_DESCRIPTIONS.stream()
            .anyMatch(d -> d.startsWith("danlu prep 1/2: scan " + files.size() + " files")),
        JOB_DESCRIPTIONS.toString());
    assertTrue(
        JOB_DESCRIPTIONS.stream()
            .anyMatch(
                d ->
                    d.startsWith("danlu prep 2/2: tokenize " + files.size() + " files")
                        && d.contains(r.tasks() + " units")),
        JOB_DESCRIPTIONS.toString());
  }

  /** The apache-arrow npm package reads each shard; rows and metadata must match our reader. */
  static void nodeReadsTheSameRows(Path out, Manifest m) throws Exception {
    // an oracle: skips the test (and fails it in CI) where setup.sh has not installed it
    dev.danlu.testkit.Prereq.commands("nodejs", "node");
    Path nm = dev.danlu.testkit.Prereq.cached("corpora/node/node_modules/apache-arrow").getParent();
    Path js = out.resolve("read-shards.js");
    Files.writeString(
        js,
        """
        const fs = require("fs");
        const { tableFromIPC } = require("apache-arrow");
        const crypto = require("crypto");
        const out = [];
        for (const f of process.argv.slice(2)) {
          const t = tableFromIPC(fs.readFileSync(f));
          const col = t.getChild("input_ids");
          const h = crypto.createHash("sha256");
          for (let i = 0; i < t.numRows; i++) h.update(col.get(i).toArray().join(",") + ";");
          out.push({ rows: t.numRows, block: t.schema.fields[0].type.listSize,
                     tokenizer: t.schema.metadata.get("danlu.tokenizer_sha256"), rowsSha: h.digest("hex") });
        }
        console.log(JSON.stringify(out));
        """);
    List<String> cmd = new ArrayList<>(List.of("node", js.toString()));
    m.shards().forEach(s -> cmd.add(out.resolve(s.path()).toString()));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT);
    pb.environment().put("NODE_PATH", nm.toString());
    Process p = pb.start();
    com.fasterxml.jackson.databind.JsonNode res;
    try {
      res = new com.fasterxml.jackson.databind.ObjectMapper().readTree(p.getInputStream());
      assertTrue(
          p.waitFor(120, java.util.concurrent.TimeUnit.SECONDS) && p.exitValue() == 0,
          "node failed");
    } finally {
      p.destroyForcibly();
    }
    try (org.apache.arrow.memory.BufferAllocator root =
        new org.apache.arrow.memory.RootAllocator()) {
      for (int k = 0; k < m.shards().size(); k++) {
        Manifest.ShardEntry e = m.shards().get(k);
        java.security.MessageDigest h = java.security.MessageDigest.getInstance("SHA-256");
        try (dev.danlu.data.shard.ShardReader r =
            dev.danlu.data.shard.ShardReader.open(
                root,
                out.resolve(e.path()),
                new dev.danlu.data.shard.ShardReader.Expect(
                    m.params().blockSize(), m.params().tokenizerSha256()))) {
          int[] row = new int[m.params().blockSize()];
          for (long i = 0; i < r.rows(); i++) {
            r.readRow(i, row);
            StringBuilder sb = new StringBuilder();
            for (int j = 0; j < row.length; j++) {
              sb.append(j == 0 ? "" : ",").append(row[j]);
            }
            h.update((sb + ";").getBytes(StandardCharsets.US_ASCII));
          }
        }
        com.fasterxml.jackson.databind.JsonNode n = res.get(k);
        assertEquals(e.rows(), n.get("rows").asLong(), e.path());
        assertEquals(m.params().blockSize(), n.get("block").asInt(), e.path());
        assertEquals(m.params().tokenizerSha256(), n.get("tokenizer").asText(), e.path());
        assertEquals(
            java.util.HexFormat.of().formatHex(h.digest()), n.get("rowsSha").asText(), e.path());
      }
    }
  }

  @Test
  void chineseWith55296PieceModelMatchesSpmEncodeGroupOf1000() throws Exception {
    check(PrepTestSupport.chineseModel(), chineseSample(tmp), 128, "group1000", "0.02");
  }

  @Test
  void englishWith32000PieceModelMatchesSpmEncodeGroupOf1000() throws Exception {
    check(PrepTestSupport.llamaModel(), englishSample(tmp), 512, "group1000", "0.03");
  }

  @Test
  void wholeFileChunkingMatchesSpmEncode() throws Exception {
    check(PrepTestSupport.llamaModel(), englishSample(tmp), 256, "file", "0.03");
  }
}
