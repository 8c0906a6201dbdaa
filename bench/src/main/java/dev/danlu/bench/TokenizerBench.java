package dev.danlu.bench;

import dev.danlu.data.tokenizer.SentencePieceTokenizer;
import dev.danlu.data.tokenizer.TextTokenizer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.ToIntFunction;
import java.util.stream.Stream;

/**
 * Tokenizer throughput against {@code spm_encode --output_format=id} (the SentencePiece C++
 * library) on the same text and model, measured in the same run: the Java encoder with 1 and 2
 * threads and the JNI (DJL) path with 1 thread; prints tokens/s, MB/s and the ratios.
 *
 * <p>Our timed work is what the prep job does per line: split the UTF-8 bytes at '\n', decode,
 * encode. spm_encode also reads the file and writes its ids as text (to /dev/null). Each side runs
 * {@code --repeats} times after one warm-up and the best time counts.
 *
 * <pre>
 * bench/run.sh TokenizerBench [--corpus DIR --tokenizer MODEL] [--mb 20] [--repeats 3]
 * </pre>
 *
 * Without --corpus it runs Chinese (55296-piece Chinese-LLaMA-2 model) and English (32000 LLaMA-2).
 */
public final class TokenizerBench {
  private TokenizerBench() {}

  public static void main(String[] args) throws Exception {
    Path corpus = null;
    Path tokenizer = null;
    double mb = 20;
    int repeats = 3;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--corpus" -> corpus = Path.of(args[++i]);
        case "--tokenizer" -> tokenizer = Path.of(args[++i]);
        case "--mb" -> mb = Double.parseDouble(args[++i]);
        case "--repeats" -> repeats = Integer.parseInt(args[++i]);
        default ->
            throw new IllegalArgumentException(
                "unknown option "
                    + args[i]
                    + "; usage: TokenizerBench [--corpus DIR --tokenizer M]"
                    + " [--mb N] [--repeats N]");
      }
    }
    Path cache = BenchDirs.cache();
    Path shared = BenchDirs.shared();
    System.out.printf(
        "TokenizerBench: %d cores, load average %.2f, %s%n",
        Runtime.getRuntime().availableProcessors(),
        java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage(),
        Runtime.version());
    if (corpus != null) {
      if (tokenizer == null) {
        throw new IllegalArgumentException("--corpus needs --tokenizer");
      }
      run("custom", corpus, tokenizer, mb, repeats);
    } else {
      run(
          "Chinese",
          cache.resolve("corpora/chinese"),
          shared.resolve("fixtures/tokenizers/chinese-llama2-tokenizer.model"),
          mb,
          repeats);
      run(
          "English",
          cache.resolve("corpora/english"),
          cache.resolve("corpora/tokenizers/llama2-tokenizer.model"),
          mb,
          repeats);
    }
  }

  private static void run(String name, Path corpus, Path model, double mb, int repeats)
      throws Exception {
    byte[] text = sample(corpus, (long) (mb * 1024 * 1024));
    Path input = Files.createTempFile("tokbench", ".txt");
    try (TextTokenizer tok = TextTokenizer.load(model)) {
      Files.write(input, text);
      double megabytes = text.length / 1e6;
      System.out.printf(
          "%n== %s: %.1f MB from %s, %s (%d pieces)%n",
          name, megabytes, corpus, model, tok.vocabSize());
      double[] spm = {Double.MAX_VALUE, Double.MAX_VALUE};
      for (int r = 0; r < repeats; r++) {
        double[] one = spmEncode(model, input);
        spm[0] = Math.min(spm[0], one[0]);
        spm[1] = Math.min(spm[1], one[1]);
      }
      ToIntFunction<String> java = line -> tok.encode(line).length;
      long tokens = encodeAll(text, java, 1); // warm-up, and the token count
      double[] ours1 = best(repeats, () -> encodeAll(text, java, 1));
      double[] ours2 = best(repeats, () -> encodeAll(text, java, 2));
      double[] jni1 = {Double.NaN, Double.NaN};
      if (tok instanceof SentencePieceTokenizer sp) {
        ToIntFunction<String> jni = line -> sp.encodeNative(line).length;
        encodeAll(text, jni, 1);
        jni1 = best(repeats, () -> encodeAll(text, jni, 1));
      }
      System.out.printf(
          "%d lines, %d tokens; best of %d runs%n", countLines(text), tokens, repeats);
      System.out.printf("%-28s %9s %9s %14s %9s%n", "", "wall s", "cpu s", "tokens/s", "MB/s");
      row("spm_encode (C++), 1 process", tokens, megabytes, spm);
      row("danlu Java BPE, 1 thread", tokens, megabytes, ours1);
      row("danlu Java BPE, 2 threads", tokens, megabytes, ours2);
      row("DJL JNI (C++), 1 thread", tokens, megabytes, jni1);
      System.out.printf(
          "ours/spm_encode per core, 1 thread : %.2fx wall, %.2fx cpu%n",
          spm[0] / ours1[0], spm[1] / ours1[1]);
      System.out.printf(
          "ours/spm_encode per core, 2 threads: %.2fx wall (wall x 2 cores), %.2fx cpu%n",
          spm[0] / ours2[0] / 2, spm[1] / ours2[1]);
      System.out.printf("scaling 1 -> 2 threads (wall)      : %.2fx%n", ours1[0] / ours2[0]);
      System.out.printf(
          "DJL JNI/spm_encode, 1 thread       : %.2fx wall, %.2fx cpu%n",
          spm[0] / jni1[0], spm[1] / jni1[1]);
    } finally {
      Files.deleteIfExists(input);
    }
  }

  /** Throughput from wall time: what a user waits for. */
  private static void row(String what, long tokens, double megabytes, double[] wallCpu) {
    System.out.printf(
        "%-28s %9.3f %9.3f %14.0f %9.2f%n",
        what, wallCpu[0], wallCpu[1], tokens / wallCpu[0], megabytes / wallCpu[0]);
  }

  /** Whole files in name order until {@code bytes} are collected (at least one file). */
  private static byte[] sample(Path dir, long bytes) throws IOException {
    List<Path> files;
    try (Stream<Path> s = Files.list(dir)) {
      files =
          s.filter(Files::isRegularFile)
              .filter(p -> p.toString().endsWith(".txt"))
              .sorted()
              .toList();
    }
    if (files.isEmpty()) {
      throw new IOException("no .txt files in " + dir + " (run scripts/fetch-corpora.sh)");
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (Path f : files) {
      byte[] b = Files.readAllBytes(f);
      out.write(b);
      if (b.length > 0 && b[b.length - 1] != '\n') {
        out.write('\n');
      }
      if (out.size() >= bytes) {
        break;
      }
    }
    return out.toByteArray();
  }

  /** Wall and CPU seconds of one spm_encode run ({@code times} reports the child's CPU). */
  static double[] spmEncode(Path model, Path input) throws Exception {
    long t0 = System.nanoTime();
    Process p =
        new ProcessBuilder(
                "bash",
                "-c",
                "spm_encode --model=\"$0\" --output_format=id < \"$1\" > /dev/null && times",
                model.toString(),
                input.toString())
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start();
    String times;
    try {
      times = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(30, TimeUnit.MINUTES) || p.exitValue() != 0) {
        throw new IllegalStateException("spm_encode failed or hung on " + input);
      }
    } finally {
      p.destroyForcibly();
    }
    double wall = (System.nanoTime() - t0) / 1e9;
    // `times` prints the shell's then its children's "user system" times, e.g. "0m11.526s 0m0.2s".
    String[] child = times.strip().split("\n")[1].trim().split("\\s+");
    return new double[] {wall, bashSeconds(child[0]) + bashSeconds(child[1])};
  }

  private static double bashSeconds(String t) {
    int m = t.indexOf('m');
    return Integer.parseInt(t.substring(0, m)) * 60
        + Double.parseDouble(t.substring(m + 1, t.length() - 1));
  }

  interface Work {
    void run() throws Exception;
  }

  /** Best wall seconds and best CPU seconds (of the worker threads) over {@code repeats} runs. */
  private static double[] best(int repeats, Work work) throws Exception {
    double[] best = {Double.MAX_VALUE, Double.MAX_VALUE};
    for (int r = 0; r < repeats; r++) {
      CPU_NANOS.set(0);
      long t0 = System.nanoTime();
      work.run();
      best[0] = Math.min(best[0], (System.nanoTime() - t0) / 1e9);
      best[1] = Math.min(best[1], CPU_NANOS.get() / 1e9);
    }
    return best;
  }

  private static final AtomicLong CPU_NANOS = new AtomicLong();

  private static int countLines(byte[] text) {
    int n = 0;
    for (byte b : text) {
      n += b == '\n' ? 1 : 0;
    }
    return n;
  }

  /**
   * Splits {@code text} at '\n' into chunks of about 1 MB, then {@code threads} threads take
   * chunks, decode their lines from UTF-8 and encode them; returns the number of tokens.
   */
  private static long encodeAll(byte[] text, ToIntFunction<String> encode, int threads)
      throws InterruptedException {
    List<int[]> chunks = new ArrayList<>(); // [start, end) byte ranges ending at '\n'
    int start = 0;
    while (start < text.length) {
      int end = Math.min(text.length, start + (1 << 20));
      while (end < text.length && text[end - 1] != '\n') {
        end++;
      }
      chunks.add(new int[] {start, end});
      start = end;
    }
    AtomicInteger next = new AtomicInteger();
    AtomicLong tokens = new AtomicLong();
    Runnable worker =
        () -> {
          java.lang.management.ThreadMXBean mx =
              java.lang.management.ManagementFactory.getThreadMXBean();
          long cpu0 = mx.getCurrentThreadCpuTime();
          long local = 0;
          for (int c = next.getAndIncrement(); c < chunks.size(); c = next.getAndIncrement()) {
            int from = chunks.get(c)[0];
            int to = chunks.get(c)[1];
            int lineStart = from;
            for (int i = from; i < to; i++) {
              if (text[i] == '\n') {
                local +=
                    encode.applyAsInt(
                        new String(text, lineStart, i - lineStart, StandardCharsets.UTF_8));
                lineStart = i + 1;
              }
            }
            if (lineStart < to) {
              local +=
                  encode.applyAsInt(
                      new String(text, lineStart, to - lineStart, StandardCharsets.UTF_8));
            }
          }
          tokens.addAndGet(local);
          CPU_NANOS.addAndGet(mx.getCurrentThreadCpuTime() - cpu0);
        };
    List<Thread> pool = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      Thread th = new Thread(worker, "tokbench-" + t);
      th.start();
      pool.add(th);
    }
    for (Thread th : pool) {
      th.join();
    }
    return tokens.get();
  }
}
