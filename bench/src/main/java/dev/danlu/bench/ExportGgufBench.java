package dev.danlu.bench;

import dev.danlu.train.checkpoint.DType;
import dev.danlu.train.checkpoint.HfCheckpoint;
import dev.danlu.train.checkpoint.SafeTensorsWriter;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.RandomInit;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code danlu export-gguf} on a 7B-shaped synthetic model (hidden 4096, intermediate 11008, 32
 * heads, vocabulary 32000, F32) with fewer layers than 32 (default 2), one child JVM per type with
 * a fixed heap ({@code -Xmx}, default 1g) so its peak heap is the export's alone, as the merge
 * benchmark measures merge. Prints per type: wall time, input MB/s, the same against a plain copy
 * of the input file timed in the same run, peak heap and output size, and a 32-layer extrapolation
 * by parameter count.
 *
 * <pre>bench/run.sh ExportGgufBench [layers=2] [xmx=1g] [dir=/tmp/danlu-export-bench] [types]</pre>
 *
 * The files are deleted afterwards (the model is ~0.8 GB per layer plus 1 GB of embeddings).
 */
public final class ExportGgufBench {
  private static final Pattern SUMMARY =
      Pattern.compile("exported .* ([0-9.]+) s, peak heap ([0-9]+) MB");

  private ExportGgufBench() {}

  public static void main(String[] args) throws Exception {
    int layers = args.length > 0 ? Integer.parseInt(args[0]) : 2;
    String xmx = args.length > 1 ? args[1] : "1g";
    Path dir = Path.of(args.length > 2 ? args[2] : "/tmp/danlu-export-bench");
    String[] types =
        args.length > 3 ? args[3].split(",") : "f32,f16,q8_0,q4_0,q4_k_m,q5_k_m,q6_k".split(",");
    LlamaConfig c =
        new LlamaConfig(4096, 11008, layers, 32, 32, 32000, 1e-5, 10000.0, null, false, 4096);
    Path base = dir.resolve("base");
    try {
      long t0 = System.nanoTime();
      synth(base, c);
      Path input = base.resolve(HfCheckpoint.SINGLE);
      long inBytes = Files.size(input);
      long params = inBytes / 4;
      System.out.printf(
          "synthetic 7B-shaped model: %d layers, %.2fB params, %.1f MB F32 (written in %.1f s)%n",
          layers, params / 1e9, inBytes / 1e6, (System.nanoTime() - t0) / 1e9);
      double copyMbs = copyRate(input, dir.resolve("copy.bin"));
      System.out.printf("plain file copy of the input: %.0f MB/s%n", copyMbs);
      System.out.println(
          "| type | wall | export MB/s (input) | vs copy | peak heap (-Xmx"
              + xmx
              + ") | output |"
              + " 32-layer estimate |");
      System.out.println("|---|---|---|---|---|---|---|");
      for (String t : types) {
        Path out = dir.resolve("out-" + t + ".gguf");
        long s0 = System.nanoTime();
        String line = exportInChild(base, out, t, xmx);
        double wall = (System.nanoTime() - s0) / 1e9;
        Matcher m = SUMMARY.matcher(line);
        if (!m.find()) {
          throw new IOException("unexpected export output: " + line);
        }
        double secs = Double.parseDouble(m.group(1));
        long heap = Long.parseLong(m.group(2));
        double mbs = inBytes / 1e6 / secs;
        double params7b = 6.74e9;
        System.out.printf(
            "| %s | %.1f s (JVM %.1f s) | %.0f | %.2fx | %d MB | %.1f MB | %.0f s |%n",
            t,
            secs,
            wall,
            mbs,
            mbs / copyMbs,
            heap,
            Files.size(out) / 1e6,
            secs * params7b / params);
        Files.deleteIfExists(out);
      }
      copyRate(input, dir.resolve("copy.bin")); // again, to see whether the machine changed
    } finally {
      deleteTree(dir);
    }
  }

  /** Random F32 weights, written block by block (the heap never holds a whole tensor). */
  static void synth(Path dir, LlamaConfig c) throws IOException {
    Files.createDirectories(dir);
    SafeTensorsWriter.Builder b =
        SafeTensorsWriter.builder(dir.resolve(HfCheckpoint.SINGLE)).setDType(DType.F32);
    List<RandomInit.TensorSpec> specs = RandomInit.tensors(c);
    for (RandomInit.TensorSpec t : specs) {
      b.declare(t.name(), t.shape());
    }
    float[] block = new float[1 << 22];
    SplittableRandom r = new SplittableRandom(7);
    try (SafeTensorsWriter w = b.open()) {
      for (RandomInit.TensorSpec t : specs) {
        long n = 1;
        for (long d : t.shape()) {
          n *= d;
        }
        for (long done = 0; done < n; done += block.length) {
          int k = (int) Math.min(block.length, n - done);
          for (int i = 0; i < k; i++) {
            block[i] = t.norm() ? 1f : (float) ((r.nextDouble() - 0.5) * 0.04);
          }
          w.writeFloats(block, 0, k);
        }
      }
    }
    Files.writeString(
        dir.resolve("config.json"), RandomInit.configJson(c, 7), StandardCharsets.UTF_8);
    Path tok = BenchDirs.cache().resolve("corpora/tokenizers/llama2-tokenizer.model");
    if (!Files.isRegularFile(tok)) {
      tok = BenchDirs.shared().resolve("fixtures/stories260K/tokenizer.model");
    }
    Files.copy(tok, dir.resolve("tokenizer.model"), StandardCopyOption.REPLACE_EXISTING);
  }

  /** MB/s of Files.copy of {@code src} (then deleted), the reference for the export rate. */
  static double copyRate(Path src, Path dst) throws IOException {
    long t0 = System.nanoTime();
    Files.copy(src, dst, StandardCopyOption.REPLACE_EXISTING);
    double secs = (System.nanoTime() - t0) / 1e9;
    long n = Files.size(dst);
    Files.delete(dst);
    return n / 1e6 / secs;
  }

  private static String exportInChild(Path base, Path out, String type, String xmx)
      throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (!a.startsWith("-Xmx")) {
        cmd.add(a);
      }
    }
    cmd.add("-Xmx" + xmx);
    cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), "dev.danlu.launch.Main"));
    cmd.addAll(
        List.of(
            "export-gguf",
            "--model",
            base.toString(),
            "--output",
            out.toString(),
            "--type",
            type,
            "--overwrite"));
    Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
    String outText = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (p.waitFor() != 0) {
      throw new IOException("export-gguf --type " + type + " failed: " + outText);
    }
    return outText.lines().filter(l -> l.startsWith("exported")).findFirst().orElse(outText);
  }

  private static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (var s = Files.walk(dir)) {
      for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
