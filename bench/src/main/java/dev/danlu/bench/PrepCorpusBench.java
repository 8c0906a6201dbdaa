package dev.danlu.bench;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The real {@code danlu prep} command, end to end, on corpus directories as users have them,
 * against {@code spm_encode} on the same text in the same run.
 *
 * <p>Inputs: the fetched chinese-poetry directory (1531 files, 86 MB), the same directory copied
 * {@code --copies} times (default 6: 9186 files, 514 MB), and the same text as two large files (~43
 * MB each, so each is split by byte ranges). For each input, each repeat runs {@code bin/danlu
 * prep} as a child process into a fresh output (JVM and Spark start included) and {@code spm_encode
 * --output_format=id} on the input's non-empty lines, both under {@code /usr/bin/time} for wall,
 * CPU user/system and peak RSS; the best of the repeats counts (the machine may be shared). Printed
 * per input: wall with and without JVM/Spark start (the sum of prep's own phase timings), the
 * tokenize stage, CPU user/system and the system share, peak RSS, Spark tasks (work units), shard
 * files, and the ratios per core against spm_encode (which uses one core): end to end = spm wall /
 * (prep wall × cores), tokenize stage = spm wall / (tokenize wall × cores). The bench checks that
 * prep's content tokens (without BOS/EOS) equal spm_encode's.
 *
 * <pre>
 * bench/run.sh PrepCorpusBench [--corpus DIR] [--tokenizer MODEL] [--copies 6] [--repeats 2]
 *     [--master 'local[2]'] [--only small|copies|large] [--keep]
 * </pre>
 *
 * Copies go to {@code java.io.tmpdir} and are deleted at the end (unless {@code --keep}). Needs a
 * built checkout ({@code mvn -DskipTests package}; the child runs with {@code DANLU_NO_BUILD=1}),
 * {@code spm_encode} and {@code /usr/bin/time}.
 */
public final class PrepCorpusBench {
  private PrepCorpusBench() {}

  /** One measured child process. */
  record Run(double wall, double user, double sys, long rssKb, String stdout) {}

  public static void main(String[] args) throws Exception {
    Path corpus = BenchDirs.cache().resolve("corpora/chinese");
    Path tokenizer =
        BenchDirs.shared().resolve("fixtures/tokenizers/chinese-llama2-tokenizer.model");
    int copies = 6;
    int repeats = 2;
    int blockSize = 512;
    String master = "local[2]";
    String only = null;
    boolean keep = false;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--corpus" -> corpus = Path.of(args[++i]);
        case "--tokenizer" -> tokenizer = Path.of(args[++i]);
        case "--copies" -> copies = Integer.parseInt(args[++i]);
        case "--repeats" -> repeats = Integer.parseInt(args[++i]);
        case "--block-size" -> blockSize = Integer.parseInt(args[++i]);
        case "--master" -> master = args[++i];
        case "--only" -> only = args[++i];
        case "--keep" -> keep = true;
        default ->
            throw new IllegalArgumentException(
                "unknown option "
                    + args[i]
                    + "; usage: PrepCorpusBench [--corpus DIR] [--tokenizer M] [--copies N]"
                    + " [--repeats N] [--master URL] [--only small|copies|large] [--keep]");
      }
    }
    Path repo = Path.of(System.getProperty("danlu.repo.dir", "."));
    for (Path p : List.of(corpus, tokenizer, Path.of("/usr/bin/time"), repo.resolve("bin/danlu"))) {
      if (!Files.exists(p)) {
        throw new IOException(
            p + " missing (scripts/setup.sh fetches the corpus; ../shared has the Chinese model)");
      }
    }
    int cores = cores(master);
    System.out.printf(
        Locale.ROOT,
        "PrepCorpusBench: %d cores, load average %.2f at start, master %s, block %d, %s%n",
        Runtime.getRuntime().availableProcessors(),
        java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage(),
        master,
        blockSize,
        tokenizer);
    Path work = Files.createTempDirectory("danlu-prepcorpus");
    try {
      List<String[]> inputs = new ArrayList<>();
      if (only == null || only.equals("small")) {
        inputs.add(new String[] {"corpus", corpus.toString()});
      }
      if (only == null || only.equals("copies")) {
        Path x = Files.createDirectories(work.resolve("x" + copies));
        for (int c = 1; c <= copies; c++) {
          copyTxt(corpus, Files.createDirectories(x.resolve("c" + c)));
        }
        inputs.add(new String[] {"corpus x" + copies, x.toString()});
      }
      if (only == null || only.equals("large")) {
        Path l = Files.createDirectories(work.resolve("large"));
        concatenate(corpus, l, 2);
        inputs.add(new String[] {"2 large files", l.toString()});
      }
      List<String> table = new ArrayList<>();
      double smallWall = 0;
      long smallBytes = 0;
      for (String[] in : inputs) {
        Path dir = Path.of(in[1]);
        Path text = work.resolve("spm-in.txt");
        long bytes = examples(dir, text);
        long files = countTxt(dir);
        Run bestSpm = null;
        Run bestPrep = null;
        double bestTokenize = Double.MAX_VALUE;
        double bestInside = Double.MAX_VALUE;
        long shards = 0;
        long tasks = 0;
        long prepTokens = -1;
        for (int rep = 0; rep < repeats; rep++) {
          Path ids = work.resolve("spm-out.txt");
          Run spm =
              timed(
                  List.of("spm_encode", "--model=" + tokenizer, "--output_format=id"),
                  text,
                  ids,
                  repo);
          long spmTokens = countIds(ids);
          Files.delete(ids);
          Path out = work.resolve("out");
          deleteTree(out);
          Run prep =
              timed(
                  List.of(
                      repo.resolve("bin/danlu").toString(),
                      "prep",
                      "--input",
                      dir.toString(),
                      "--tokenizer",
                      tokenizer.toString(),
                      "--block-size",
                      Integer.toString(blockSize),
                      "--output",
                      out.toString(),
                      "--master",
                      master,
                      "--progress-seconds",
                      "0"),
                  null,
                  null,
                  repo);
          double[] phases = phases(prep.stdout());
          long[] totals = committed(prep.stdout());
          prepTokens = totals[0] - 2 * totals[1];
          if (prepTokens != spmTokens) {
            throw new IllegalStateException(
                "prep produced "
                    + prepTokens
                    + " content tokens, spm_encode "
                    + spmTokens
                    + ": not the same work");
          }
          try (Stream<Path> s = Files.walk(out.resolve("shards"))) {
            shards = s.filter(p -> p.toString().endsWith(".arrow")).count();
          }
          tasks = group(prep.stdout(), "(\\d+) tasks \\(");
          System.out.printf(
              Locale.ROOT,
              "  %s, run %d: spm_encode %.2f s; prep %.2f s wall (%.2f s inside the JVM, tokenize"
                  + " %.2f s), user %.2f s, system %.2f s, RSS %d MB%n",
              in[0],
              rep + 1,
              spm.wall(),
              prep.wall(),
              phases[0],
              phases[1],
              prep.user(),
              prep.sys(),
              prep.rssKb() >> 10);
          if (bestSpm == null || spm.wall() < bestSpm.wall()) {
            bestSpm = spm;
          }
          if (bestPrep == null || prep.wall() < bestPrep.wall()) {
            bestPrep = prep;
          }
          bestInside = Math.min(bestInside, phases[0]);
          bestTokenize = Math.min(bestTokenize, phases[1]);
        }
        if (in[0].equals("corpus")) {
          smallWall = bestPrep.wall();
          smallBytes = bytes;
        }
        table.add(
            String.format(
                Locale.ROOT,
                "| %s: %.0f MB, %d files | %.1f s | %.1f s | %.1f s | %.1f / %.1f s (%.1f%%) | %d MB"
                    + " | %d | %d | %.1f s | %.2fx | %.2fx |",
                in[0],
                bytes / 1048576.0,
                files,
                bestPrep.wall(),
                bestInside,
                bestTokenize,
                bestPrep.user(),
                bestPrep.sys(),
                100 * bestPrep.sys() / (bestPrep.user() + bestPrep.sys()),
                bestPrep.rssKb() >> 10,
                tasks,
                shards,
                bestSpm.wall(),
                bestSpm.wall() / (bestPrep.wall() * cores),
                bestSpm.wall() / (bestTokenize * cores)));
        if (!in[0].equals("corpus") && smallWall > 0 && in[0].startsWith("corpus x")) {
          double growth = bestPrep.wall() / smallWall;
          double ideal = (double) bytes / smallBytes;
          table.add(
              String.format(
                  Locale.ROOT,
                  "growth corpus -> %s: wall x%.2f for x%.2f the bytes (%.0f%% of linear)",
                  in[0],
                  growth,
                  ideal,
                  100 * growth / ideal));
        }
      }
      System.out.printf(
          Locale.ROOT,
          "%n| input | prep wall | without JVM/Spark start | tokenize stage | CPU user / system"
              + " (system share) | peak RSS | tasks | .arrow files | spm_encode, 1 core |"
              + " end to end per core / spm | tokenize per core / spm |%n"
              + "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |%n");
      table.forEach(System.out::println);
      System.out.printf(
          Locale.ROOT,
          "load average at end %.2f%n",
          java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    } finally {
      if (keep) {
        System.out.println("kept " + work);
      } else {
        deleteTree(work);
      }
    }
  }

  static int cores(String master) {
    Matcher m = Pattern.compile("local\\[(\\d+)]").matcher(master);
    return m.matches() ? Integer.parseInt(m.group(1)) : Runtime.getRuntime().availableProcessors();
  }

  /** Runs {@code cmd} under /usr/bin/time; stdin from {@code in}, stdout to {@code out}. */
  static Run timed(List<String> cmd, Path in, Path out, Path repo) throws Exception {
    Path times = Files.createTempFile("danlu-time", ".txt");
    List<String> full = new ArrayList<>(List.of("/usr/bin/time", "-o", times.toString(), "-f"));
    full.add("%e %U %S %M");
    full.addAll(cmd);
    Path err = Files.createTempFile("danlu-stderr", ".txt");
    ProcessBuilder pb = new ProcessBuilder(full).redirectError(err.toFile());
    pb.environment().put("DANLU_NO_BUILD", "1");
    pb.directory(repo.toFile());
    if (in != null) {
      pb.redirectInput(in.toFile());
    }
    Path stdout = out != null ? out : Files.createTempFile("danlu-stdout", ".txt");
    pb.redirectOutput(stdout.toFile());
    Process p = pb.start();
    if (!p.waitFor(60, TimeUnit.MINUTES) || p.exitValue() != 0) {
      p.destroyForcibly();
      System.err.print(Files.readString(err));
      throw new IOException(String.join(" ", cmd) + " failed");
    }
    Files.delete(err);
    String[] t = Files.readString(times).trim().split("\\s+");
    Files.delete(times);
    String text = out != null ? "" : Files.readString(stdout);
    if (out == null) {
      Files.delete(stdout);
    }
    return new Run(
        Double.parseDouble(t[0]),
        Double.parseDouble(t[1]),
        Double.parseDouble(t[2]),
        Long.parseLong(t[3]),
        text);
  }

  /** Seconds inside the JVM (the sum of prep's phases) and of the tokenize phase. */
  static double[] phases(String stdout) {
    Matcher m = Pattern.compile("prep: time (.*)").matcher(stdout);
    if (!m.find()) {
      throw new IllegalStateException("no 'prep: time' line in:\n" + stdout);
    }
    double sum = 0;
    double tokenize = 0;
    Matcher ph = Pattern.compile("(\\w+) ([0-9.]+)s").matcher(m.group(1));
    while (ph.find()) {
      double v = Double.parseDouble(ph.group(2));
      sum += v;
      if (ph.group(1).equals("tokenize")) {
        tokenize = v;
      }
    }
    return new double[] {sum, tokenize};
  }

  /** Tokens and lines of the committed version, from prep's summary line. */
  static long[] committed(String stdout) {
    Matcher m =
        Pattern.compile("committed version \\d+: \\d+ files, (\\d+) lines, (\\d+) tokens")
            .matcher(stdout);
    if (!m.find()) {
      throw new IllegalStateException("no commit line in:\n" + stdout);
    }
    return new long[] {Long.parseLong(m.group(2)), Long.parseLong(m.group(1))};
  }

  static long group(String text, String regex) {
    Matcher m = Pattern.compile(regex).matcher(text);
    return m.find() ? Long.parseLong(m.group(1)) : -1;
  }

  static List<Path> txtFiles(Path dir) throws IOException {
    try (Stream<Path> s = Files.walk(dir)) {
      return s.filter(p -> p.getFileName().toString().endsWith(".txt"))
          .filter(Files::isRegularFile)
          .sorted()
          .toList();
    }
  }

  static long countTxt(Path dir) throws IOException {
    return txtFiles(dir).size();
  }

  static void copyTxt(Path from, Path to) throws IOException {
    for (Path f : txtFiles(from)) {
      Files.copy(f, to.resolve(f.getFileName()));
    }
  }

  /** The corpus' files concatenated, in name order, into {@code n} files of about equal size. */
  static void concatenate(Path from, Path to, int n) throws IOException {
    List<Path> all = txtFiles(from);
    long total = 0;
    for (Path f : all) {
      total += Files.size(f);
    }
    long per = (total + n - 1) / n;
    int k = 0;
    long written = 0;
    OutputStream o = Files.newOutputStream(to.resolve(String.format("large-%d.txt", k)));
    try {
      for (Path f : all) {
        if (written >= per * (k + 1)) {
          o.close();
          o = Files.newOutputStream(to.resolve(String.format("large-%d.txt", ++k)));
        }
        byte[] b = Files.readAllBytes(f);
        o.write(b);
        if (b.length > 0 && b[b.length - 1] != '\n') {
          o.write('\n');
        }
        written += b.length;
      }
    } finally {
      o.close();
    }
  }

  /**
   * The examples spm_encode gets: each file's non-empty lines (one trailing CR removed), one per
   * line, files in path order. Returns the input's size in bytes.
   */
  static long examples(Path dir, Path text) throws IOException {
    long bytes = 0;
    try (OutputStream o = new java.io.BufferedOutputStream(Files.newOutputStream(text), 1 << 20)) {
      for (Path f : txtFiles(dir)) {
        byte[] b = Files.readAllBytes(f);
        bytes += b.length;
        int start = 0;
        for (int i = 0; i <= b.length; i++) {
          if (i == b.length || b[i] == '\n') {
            int end = i;
            if (end > start && b[end - 1] == '\r') {
              end--;
            }
            if (end > start) {
              o.write(b, start, end - start);
              o.write('\n');
            }
            start = i + 1;
          }
        }
      }
    }
    return bytes;
  }

  static long countIds(Path ids) throws IOException {
    long n = 0;
    byte[] buf = new byte[1 << 20];
    boolean inNumber = false;
    try (var in = Files.newInputStream(ids)) {
      int r;
      while ((r = in.read(buf)) > 0) {
        for (int i = 0; i < r; i++) {
          boolean digit = buf[i] >= '0' && buf[i] <= '9';
          if (digit && !inNumber) {
            n++;
          }
          inNumber = digit;
        }
      }
    }
    return n;
  }

  static void deleteTree(Path p) throws IOException {
    if (!Files.exists(p)) {
      return;
    }
    try (Stream<Path> s = Files.walk(p)) {
      s.sorted(Comparator.reverseOrder()).forEach(q -> q.toFile().delete());
    }
  }
}
