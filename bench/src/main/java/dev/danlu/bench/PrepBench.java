package dev.danlu.bench;

import dev.danlu.jobs.prep.PrepJob;
import dev.danlu.jobs.prep.PrepReport;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

/**
 * Throughput of the whole prep job (scan, tokenize, chunk, Arrow write, manifest commit) with Spark
 * {@code local[1]} and {@code local[2]}, against {@code spm_encode --output_format=id} on the same
 * input and model in the same run. Prints tokens/s, MB/s of input and the ratios.
 *
 * <p>Each Spark configuration gets its own context and one untimed warm-up run over the whole
 * sample (JIT, tokenizer load, word cache); the timed run then prepares the sample again into a
 * fresh output, so both sides are measured in steady state. Each side runs {@code --repeats} times
 * and the best time counts (the machine may be shared). Context start-up is not timed (it is paid
 * once per job, not per byte). spm_encode reads the same bytes from a file and writes ids to a
 * file.
 *
 * <pre>
 * bench/run.sh PrepBench [--corpus DIR] [--tokenizer MODEL] [--mb 16] [--block-size 512] [--repeats 3]
 * </pre>
 */
public final class PrepBench {
  private PrepBench() {}

  public static void main(String[] args) throws Exception {
    Path cache = BenchDirs.cache();
    Path shared = BenchDirs.shared();
    Path corpus = cache.resolve("corpora/chinese");
    Path tokenizer = shared.resolve("fixtures/tokenizers/chinese-llama2-tokenizer.model");
    double mb = 16;
    int blockSize = 512;
    int repeats = 3;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--corpus" -> corpus = Path.of(args[++i]);
        case "--tokenizer" -> tokenizer = Path.of(args[++i]);
        case "--mb" -> mb = Double.parseDouble(args[++i]);
        case "--block-size" -> blockSize = Integer.parseInt(args[++i]);
        case "--repeats" -> repeats = Integer.parseInt(args[++i]);
        default ->
            throw new IllegalArgumentException(
                "unknown option "
                    + args[i]
                    + "; usage: PrepBench [--corpus DIR] [--tokenizer M] [--mb N] [--block-size N] [--repeats N]");
      }
    }
    for (Path p : List.of(corpus, tokenizer)) {
      if (!Files.exists(p)) {
        throw new IOException(
            p + " missing (run scripts/fetch-corpora.sh; ../shared for the Chinese model)");
      }
    }
    System.out.printf(
        Locale.ROOT,
        "PrepBench: %d cores, load average %.2f, %s%n",
        Runtime.getRuntime().availableProcessors(),
        java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage(),
        Runtime.version());
    Path work = Files.createTempDirectory("danlu-prepbench");
    try {
      Path in = Files.createDirectories(work.resolve("in"));
      long bytes = sample(corpus, in, (long) (mb * (1 << 20)));
      Path all = work.resolve("all.txt");
      // spm_encode gets the same examples: each file's non-empty lines (one trailing CR removed),
      // one per line, so a file without a final newline does not merge with the next one.
      try (PrintStream o =
              new PrintStream(Files.newOutputStream(all), false, StandardCharsets.UTF_8);
          Stream<Path> s = Files.list(in)) {
        for (Path f : s.sorted().toList()) {
          for (String line : Files.readString(f, StandardCharsets.UTF_8).split("\n", -1)) {
            String l = line.endsWith("\r") ? line.substring(0, line.length() - 1) : line;
            if (!l.isEmpty()) {
              o.print(l);
              o.print('\n');
            }
          }
        }
      }
      System.out.printf(
          Locale.ROOT,
          "input: %s, %.1f MB, model %s, block %d%n",
          corpus,
          bytes / 1048576.0,
          tokenizer,
          blockSize);

      Path ids = work.resolve("ids.txt");
      double spmSecs = Double.MAX_VALUE;
      for (int rep = 0; rep < repeats; rep++) {
        long t0 = System.nanoTime();
        Process p =
            new ProcessBuilder("spm_encode", "--model=" + tokenizer, "--output_format=id")
                .redirectInput(all.toFile())
                .redirectOutput(ids.toFile())
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
        if (!p.waitFor(30, TimeUnit.MINUTES) || p.exitValue() != 0) {
          throw new IOException("spm_encode failed");
        }
        spmSecs = Math.min(spmSecs, (System.nanoTime() - t0) / 1e9);
      }
      long spmTokens = countIds(ids);
      report("spm_encode (1 process)", spmSecs, bytes, spmTokens);

      double[] perSec = new double[3];
      for (int cores : new int[] {1, 2}) {
        SparkConf conf =
            new SparkConf()
                .setMaster("local[" + cores + "]")
                .setAppName("danlu PrepBench")
                .set("spark.ui.enabled", "false")
                .set("spark.driver.host", "127.0.0.1")
                .set("spark.driver.bindAddress", "127.0.0.1");
        try (JavaSparkContext jsc = new JavaSparkContext(conf)) {
          prep(jsc, in.toString(), tokenizer, blockSize, work.resolve("warm" + cores));
          long t = System.nanoTime();
          PrepReport r =
              prep(jsc, in.toString(), tokenizer, blockSize, work.resolve("out" + cores));
          double secs = (System.nanoTime() - t) / 1e9;
          // Content tokens (without BOS/EOS), comparable with spm_encode's output.
          long tokens = r.manifest().totals().tokens() - 2 * r.manifest().totals().lines();
          if (tokens != spmTokens) {
            throw new IllegalStateException(
                "prep produced "
                    + tokens
                    + " content tokens, spm_encode "
                    + spmTokens
                    + ": not the same work");
          }
          report("prep local[" + cores + "] (scan+tokenize+Arrow+commit)", secs, bytes, tokens);
          perSec[cores] = tokens / secs;
        }
      }
      double spm = spmTokens / spmSecs;
      System.out.printf(
          Locale.ROOT, "ratio prep local[1] / spm_encode (per core): %.2fx%n", perSec[1] / spm);
      System.out.printf(
          Locale.ROOT, "ratio prep local[2] / spm_encode:            %.2fx%n", perSec[2] / spm);
      System.out.printf(
          Locale.ROOT,
          "scaling local[2] / local[1]:                 %.2fx%n",
          perSec[2] / perSec[1]);
    } finally {
      try (Stream<Path> s = Files.walk(work)) {
        s.sorted(Comparator.reverseOrder()).forEach(q -> q.toFile().delete());
      }
    }
  }

  private static PrepReport prep(JavaSparkContext jsc, String input, Path tok, int block, Path out)
      throws IOException {
    PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
    return PrepJob.run(
        jsc,
        new String[] {
          "--input",
          input,
          "--tokenizer",
          tok.toString(),
          "--block-size",
          Integer.toString(block),
          "--output",
          out.toString(),
          "--progress-seconds",
          "0"
        },
        quiet);
  }

  /** Copies whole *.txt files in name order until {@code limit} bytes; returns bytes copied. */
  private static long sample(Path corpus, Path in, long limit) throws IOException {
    long total = 0;
    try (Stream<Path> s = Files.list(corpus)) {
      for (Path f : s.filter(q -> q.getFileName().toString().endsWith(".txt")).sorted().toList()) {
        if (total >= limit) {
          break;
        }
        Files.copy(f, in.resolve(f.getFileName()));
        total += Files.size(f);
      }
    }
    return total;
  }

  private static long countIds(Path ids) throws IOException {
    long n = 0;
    try (Stream<String> lines = Files.lines(ids)) {
      for (String l : (Iterable<String>) lines::iterator) {
        if (!l.isEmpty()) {
          n += l.chars().filter(c -> c == ' ').count() + 1;
        }
      }
    }
    return n;
  }

  private static void report(String what, double secs, long bytes, long tokens) {
    System.out.printf(
        Locale.ROOT,
        "%-48s %7.2f s  %7.2f MB/s  %10.0f tokens/s%n",
        what,
        secs,
        bytes / secs / 1048576.0,
        tokens / secs);
  }
}
