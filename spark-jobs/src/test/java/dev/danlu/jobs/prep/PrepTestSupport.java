package dev.danlu.jobs.prep;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import dev.danlu.data.shard.ShardDataset;
import dev.danlu.data.shard.ShardReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

/** Shared pieces of the prep tests: a local[2] Spark, the real tokenizers/corpora, readers. */
final class PrepTestSupport {
  private PrepTestSupport() {}

  static JavaSparkContext startSpark() {
    SparkConf conf =
        new SparkConf()
            .setMaster("local[2]")
            .setAppName("danlu-prep-test")
            .set("spark.ui.enabled", "false")
            .set("spark.driver.host", "127.0.0.1")
            .set("spark.driver.bindAddress", "127.0.0.1")
            .set("spark.sql.shuffle.partitions", "2");
    return new JavaSparkContext(conf);
  }

  /** The 55296-piece Chinese-LLaMA-2 model. */
  static Path chineseModel() {
    return dev.danlu.testkit.Prereq.shared("fixtures/tokenizers/chinese-llama2-tokenizer.model");
  }

  /** The 32000-piece LLaMA-2 model. */
  static Path llamaModel() {
    return dev.danlu.testkit.Prereq.cached("corpora/tokenizers/llama2-tokenizer.model");
  }

  static Path corpus(String name) {
    return dev.danlu.testkit.Prereq.cached("corpora/" + name);
  }

  /** Runs prep in this JVM on {@code jsc}; the console goes to stdout and into {@code log}. */
  static PrepReport prep(JavaSparkContext jsc, StringBuilder log, String... args)
      throws IOException {
    PrepOptions o = PrepOptions.parse(args);
    TokenizerInfo tok = TokenizerInfo.load(o.tokenizer(), jsc.hadoopConfiguration());
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    PrintStream console =
        new PrintStream(new TeeStream(buf, System.out), true, StandardCharsets.UTF_8);
    try {
      return PrepJob.run(jsc, o, tok, console);
    } finally {
      console.flush();
      if (log != null) {
        log.append(buf.toString(StandardCharsets.UTF_8));
      }
    }
  }

  /** Every block of the committed dataset (both splits), as strings, sorted: a multiset. */
  static List<String> blocks(Path out, String tokenizerSha) throws IOException {
    Manifest m = ManifestIo.readCurrent(out);
    List<String> all = new ArrayList<>();
    try (BufferAllocator root = new RootAllocator()) {
      for (String split : List.of(Manifest.TRAIN, Manifest.VALIDATION)) {
        try (ShardDataset ds =
            new ShardDataset(
                root,
                out,
                m,
                split,
                new ShardReader.Expect(m.params().blockSize(), tokenizerSha))) {
          int[] row = new int[ds.blockSize()];
          for (long i = 0; i < ds.rows(); i++) {
            ds.readRow(i, row);
            all.add(Arrays.toString(row));
          }
        }
      }
    }
    all.sort(null);
    return all;
  }

  /** spm_encode --output_format=id over {@code lines}, one id array per line. */
  static List<int[]> spmEncode(Path model, List<String> lines, Path work) throws Exception {
    dev.danlu.testkit.Prereq.commands("sentencepiece", "spm_encode");
    Path in = work.resolve("spm-in.txt");
    Path outFile = work.resolve("spm-out.txt");
    Files.write(in, lines, StandardCharsets.UTF_8);
    Process p =
        new ProcessBuilder("spm_encode", "--model=" + model, "--output_format=id")
            .redirectInput(in.toFile())
            .redirectOutput(outFile.toFile())
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start();
    try {
      if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new IllegalStateException("spm_encode failed");
      }
    } finally {
      p.destroyForcibly();
    }
    List<String> out = Files.readAllLines(outFile, StandardCharsets.UTF_8);
    if (out.size() != lines.size()) {
      throw new IllegalStateException(
          "spm_encode wrote " + out.size() + " lines for " + lines.size());
    }
    List<int[]> ids = new ArrayList<>();
    for (String l : out) {
      ids.add(
          l.isEmpty()
              ? new int[0]
              : Arrays.stream(l.split(" ")).mapToInt(Integer::parseInt).toArray());
    }
    return ids;
  }

  /** The lines of a file that become examples: split on \n, one trailing \r removed, non-empty. */
  static List<String> exampleLines(Path file) throws IOException {
    String text = Files.readString(file, StandardCharsets.UTF_8);
    List<String> out = new ArrayList<>();
    for (String l : text.split("\n", -1)) {
      if (l.endsWith("\r")) {
        l = l.substring(0, l.length() - 1);
      }
      if (!l.isEmpty()) {
        out.add(l);
      }
    }
    return out;
  }

  private static final class TeeStream extends OutputStream {
    private final OutputStream a;
    private final OutputStream b;

    TeeStream(OutputStream a, OutputStream b) {
      this.a = a;
      this.b = b;
    }

    @Override
    public void write(int x) throws IOException {
      a.write(x);
      b.write(x);
    }

    @Override
    public void write(byte[] buf, int off, int len) throws IOException {
      a.write(buf, off, len);
      b.write(buf, off, len);
    }
  }
}
