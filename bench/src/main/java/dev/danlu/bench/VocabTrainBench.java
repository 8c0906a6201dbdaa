package dev.danlu.bench;

import dev.danlu.data.tokenizer.SentencePieceModel;
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
 * The real {@code danlu vocab train} command against Debian's {@code spm_train --model_type=bpe
 * --normalization_rule_name=<--rule, default identity> --num_threads=2} on the same input files and
 * flags, in one run, both under {@code /usr/bin/time -v} (wall clock, CPU user/system, peak RSS).
 *
 * <p>Input: the chinese-poetry files of {@code --corpus} in name order until at least {@code
 * --lines} lines (default 220000), concatenated file by file into {@code --parts} files (default 8)
 * of about equal size; both programs get exactly these files ({@code spm_train --input=a,b,...},
 * {@code danlu vocab train --input <dir>}). Vocabulary: {@code --alphabet} (the required characters
 * at {@code --character-coverage}, measured: 8522 for the default input at 0.9995) + 3 meta pieces
 * + {@code --merges} (default 1000); the bench fails if either program reports another alphabet
 * size. Printed: both runs, the speed ratio (spm_train wall / danlu wall, JVM and Spark start
 * included) and whether the two models have the same pieces (piece, score, type, in id order).
 *
 * <pre>
 * bench/run.sh VocabTrainBench [--corpus DIR] [--lines 220000] [--parts 8] [--alphabet 8522]
 *     [--merges 1000] [--character-coverage 0.9995] [--master 'local[2]'] [--rule identity] [--keep]
 * </pre>
 *
 * Needs a built checkout ({@code bench/run.sh} builds it; the child runs bin/danlu with {@code
 * DANLU_NO_BUILD=1}), {@code spm_train} (scripts/setup.sh) and {@code /usr/bin/time}.
 */
public final class VocabTrainBench {
  private VocabTrainBench() {}

  /** One measured child process: seconds, KB, its stdout+stderr. */
  record Run(double wall, double user, double sys, long rssKb, String log) {}

  public static void main(String[] args) throws Exception {
    Path corpus = BenchDirs.cache().resolve("corpora/chinese");
    long lines = 220_000;
    int parts = 8;
    int alphabet = 8522;
    int merges = 1000;
    String coverage = "0.9995";
    String master = "local[2]";
    String rule = "identity";
    boolean keep = false;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--corpus" -> corpus = Path.of(args[++i]);
        case "--lines" -> lines = Long.parseLong(args[++i]);
        case "--parts" -> parts = Integer.parseInt(args[++i]);
        case "--alphabet" -> alphabet = Integer.parseInt(args[++i]);
        case "--merges" -> merges = Integer.parseInt(args[++i]);
        case "--character-coverage" -> coverage = args[++i];
        case "--master" -> master = args[++i];
        case "--rule" -> rule = args[++i];
        case "--keep" -> keep = true;
        default ->
            throw new IllegalArgumentException(
                "unknown option "
                    + args[i]
                    + "; usage: VocabTrainBench [--corpus DIR] [--lines N] [--parts N]"
                    + " [--alphabet N] [--merges N] [--character-coverage F] [--master URL]"
                    + " [--rule identity|nmt_nfkc|nfkc] [--keep]");
      }
    }
    Path repo = Path.of(System.getProperty("danlu.repo.dir", "."));
    for (Path p : List.of(corpus, Path.of("/usr/bin/time"), repo.resolve("bin/danlu"))) {
      if (!Files.exists(p)) {
        throw new IOException(p + " missing (scripts/setup.sh installs time, fetches the corpus)");
      }
    }
    int vocab = alphabet + 3 + merges;
    Path work = Files.createTempDirectory("danlu-vocabbench");
    try {
      Path in = Files.createDirectories(work.resolve("in"));
      long[] selected = select(corpus, lines, parts, in);
      List<String> inputs;
      try (Stream<Path> s = Files.list(in)) {
        inputs = s.map(Path::toString).sorted().toList();
      }
      System.out.printf(
          Locale.ROOT,
          "VocabTrainBench: %d cores, load average %s, input %d files of %s -> %d parts,"
              + " %d lines, %.1f MB; vocab %d = alphabet %d + 3 meta + %d merges,"
              + " coverage %s, master %s%n",
          Runtime.getRuntime().availableProcessors(),
          Files.readString(Path.of("/proc/loadavg")).trim(),
          selected[0],
          corpus,
          parts,
          selected[1],
          selected[2] / 1e6,
          vocab,
          alphabet,
          merges,
          coverage,
          master);
      Path spmPrefix = work.resolve("spm");
      Run spm =
          timed(
              List.of(
                  "spm_train",
                  "--input=" + String.join(",", inputs),
                  "--model_prefix=" + spmPrefix,
                  "--model_type=bpe",
                  "--normalization_rule_name=" + rule,
                  "--vocab_size=" + vocab,
                  "--character_coverage=" + coverage,
                  "--num_threads=2"),
              repo);
      print("spm_train", spm);
      Path danluModel = work.resolve("danlu.model");
      Run danlu =
          timed(
              List.of(
                  repo.resolve("bin/danlu").toString(),
                  "vocab",
                  "train",
                  "--input",
                  in.toString(),
                  "--vocab-size",
                  Integer.toString(vocab),
                  "--character-coverage",
                  coverage,
                  "--normalization-rule-name",
                  rule,
                  "--master",
                  master,
                  "--output",
                  danluModel.toString()),
              repo);
      print("danlu vocab train", danlu);
      danlu.log().lines().filter(l -> l.startsWith("vocab train")).forEach(System.out::println);
      int spmAlphabet = (int) group(spm.log(), "Alphabet size=(\\d+)");
      int danluAlphabet = (int) group(danlu.log(), "alphabet (\\d+)");
      if (spmAlphabet != alphabet || danluAlphabet != alphabet) {
        throw new IllegalStateException(
            "alphabet: spm_train "
                + spmAlphabet
                + ", danlu "
                + danluAlphabet
                + ", bench assumed "
                + alphabet
                + "; rerun with --alphabet "
                + spmAlphabet);
      }
      SentencePieceModel a =
          SentencePieceModel.parse(
              Files.readAllBytes(Path.of(spmPrefix + ".model")), "spm_train model");
      SentencePieceModel b = SentencePieceModel.parse(Files.readAllBytes(danluModel), "danlu");
      int same = 0;
      int firstDiff = -1;
      for (int i = 0; i < Math.min(a.size(), b.size()); i++) {
        boolean eq =
            a.piece(i).equals(b.piece(i)) && a.score(i) == b.score(i) && a.type(i) == b.type(i);
        if (eq) {
          same++;
        } else if (firstDiff < 0) {
          firstDiff = i;
        }
      }
      boolean identical = same == a.size() && a.size() == b.size();
      System.out.printf(
          Locale.ROOT,
          "pieces: %s (%d of %d/%d equal in id order%s)%n",
          identical ? "IDENTICAL" : "DIFFERENT",
          same,
          a.size(),
          b.size(),
          firstDiff < 0
              ? ""
              : ", first difference at id "
                  + firstDiff
                  + ": spm '"
                  + a.piece(firstDiff)
                  + "' danlu '"
                  + b.piece(firstDiff)
                  + "'");
      System.out.printf(
          Locale.ROOT,
          "ratio danlu speed / spm_train speed (spm wall / danlu wall): %.2fx;"
              + " peak RSS danlu/spm %.2f%n",
          spm.wall() / danlu.wall(),
          (double) danlu.rssKb() / spm.rssKb());
      System.out.printf(
          Locale.ROOT,
          "load average at end: %s%n",
          Files.readString(Path.of("/proc/loadavg")).trim());
    } finally {
      if (keep) {
        System.out.println("kept " + work);
      } else {
        deleteTree(work);
      }
    }
  }

  private static void print(String name, Run r) {
    System.out.printf(
        Locale.ROOT,
        "%-18s wall %7.1f s  user %7.1f s  sys %5.1f s  peak RSS %6.0f MB%n",
        name,
        r.wall(),
        r.user(),
        r.sys(),
        r.rssKb() / 1024.0);
  }

  /**
   * Concatenates the {@code *.txt} files of {@code corpus} in name order, until at least {@code
   * lines} lines, into {@code parts} files of about equal size; returns files, lines, bytes.
   */
  static long[] select(Path corpus, long lines, int parts, Path out) throws IOException {
    List<Path> files;
    try (Stream<Path> s = Files.walk(corpus)) {
      files =
          s.filter(p -> p.toString().endsWith(".txt"))
              .sorted(Comparator.comparing(Path::toString))
              .toList();
    }
    List<byte[]> chosen = new ArrayList<>();
    long n = 0;
    long bytes = 0;
    for (Path f : files) {
      if (n >= lines) {
        break;
      }
      byte[] b = Files.readAllBytes(f);
      if (b.length > 0 && b[b.length - 1] != '\n') {
        byte[] nb = java.util.Arrays.copyOf(b, b.length + 1);
        nb[b.length] = '\n';
        b = nb;
      }
      for (byte x : b) {
        if (x == '\n') {
          n++;
        }
      }
      bytes += b.length;
      chosen.add(b);
    }
    if (n < lines) {
      throw new IOException(corpus + " has only " + n + " lines, " + lines + " asked");
    }
    long per = (bytes + parts - 1) / parts;
    int part = 0;
    long written = 0;
    OutputStream os = Files.newOutputStream(out.resolve(String.format("part-%02d.txt", part)));
    try {
      for (byte[] b : chosen) {
        if (written >= per * (part + 1) && part < parts - 1) {
          os.close();
          part++;
          os = Files.newOutputStream(out.resolve(String.format("part-%02d.txt", part)));
        }
        os.write(b);
        written += b.length;
      }
    } finally {
      os.close();
    }
    return new long[] {chosen.size(), n, bytes};
  }

  /** Runs {@code cmd} under {@code /usr/bin/time -v}; the program's output is kept in the log. */
  static Run timed(List<String> cmd, Path repo) throws Exception {
    Path times = Files.createTempFile("danlu-time", ".txt");
    List<String> full = new ArrayList<>(List.of("/usr/bin/time", "-v", "-o", times.toString()));
    full.addAll(cmd);
    Path log = Files.createTempFile("danlu-log", ".txt");
    ProcessBuilder pb = new ProcessBuilder(full).redirectErrorStream(true);
    pb.environment().put("DANLU_NO_BUILD", "1");
    pb.directory(repo.toFile());
    pb.redirectOutput(log.toFile());
    Process p = pb.start();
    try {
      if (!p.waitFor(120, TimeUnit.MINUTES) || p.exitValue() != 0) {
        throw new IOException(cmd.get(0) + " failed:\n" + Files.readString(log));
      }
    } finally {
      p.destroyForcibly();
    }
    String t = Files.readString(times);
    String text = Files.readString(log);
    Files.delete(times);
    Files.delete(log);
    return new Run(
        wallSeconds(t),
        Double.parseDouble(groupText(t, "User time \\(seconds\\): ([0-9.]+)")),
        Double.parseDouble(groupText(t, "System time \\(seconds\\): ([0-9.]+)")),
        group(t, "Maximum resident set size \\(kbytes\\): (\\d+)"),
        text);
  }

  /** "Elapsed (wall clock) time (h:mm:ss or m:ss): 1:02.33" in seconds. */
  static double wallSeconds(String timeV) {
    String v = groupText(timeV, "Elapsed \\(wall clock\\) time \\(h:mm:ss or m:ss\\): ([0-9:.]+)");
    double s = 0;
    for (String part : v.split(":")) {
      s = s * 60 + Double.parseDouble(part);
    }
    return s;
  }

  static String groupText(String text, String regex) {
    Matcher m = Pattern.compile(regex).matcher(text);
    if (!m.find()) {
      throw new IllegalStateException("no /" + regex + "/ in:\n" + text);
    }
    return m.group(1);
  }

  static long group(String text, String regex) {
    return Long.parseLong(groupText(text, regex));
  }

  static void deleteTree(Path dir) throws IOException {
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }
}
