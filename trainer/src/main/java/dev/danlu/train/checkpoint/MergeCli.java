package dev.danlu.train.checkpoint;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Path;

/**
 * {@code danlu merge --base <hf dir> --adapter <peft dir> --output <dir> [--dtype f16|bf16|f32]
 * [--shard-size-mb N] [--overwrite]}: command-line front of {@link Merge}. Prints a one-line
 * summary (with the JVM's peak heap, the number that shows the merge streams) on stdout.
 */
public final class MergeCli {
  static final String USAGE =
      "usage: danlu merge --base <hf model dir> --adapter <peft adapter dir> --output <dir>\n"
          + "                   [--dtype f16|bf16|f32] [--shard-size-mb N (default 5000)]"
          + " [--overwrite]\n"
          + "Writes base + adapter merged (W += B@A * alpha/r, embed_tokens/lm_head replaced) as a\n"
          + "Hugging Face directory: safetensors shards + index, config.json, tokenizer files.";

  private MergeCli() {}

  /** Runs the command; returns the exit code (2 for usage errors). */
  public static int run(String[] args) throws Exception {
    Path base = null;
    Path adapter = null;
    Path output = null;
    DType dtype = null;
    long shardMb = 5000;
    boolean overwrite = false;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (a.equals("-h") || a.equals("--help")) {
        System.out.println(USAGE);
        return 0;
      }
      if (a.equals("--overwrite")) {
        overwrite = true;
        continue;
      }
      if (i + 1 >= args.length) {
        return usage("missing value after " + a);
      }
      String v = args[++i];
      switch (a) {
        case "--base" -> base = Path.of(v);
        case "--adapter" -> adapter = Path.of(v);
        case "--output" -> output = Path.of(v);
        case "--dtype" -> {
          try {
            dtype = DType.parse(v);
          } catch (IllegalArgumentException e) {
            return usage(e.getMessage());
          }
          if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16) {
            return usage("--dtype must be f16, bf16 or f32, not " + v);
          }
        }
        case "--shard-size-mb" -> {
          try {
            shardMb = Long.parseLong(v);
          } catch (NumberFormatException e) {
            return usage("--shard-size-mb needs a whole number of MB, got '" + v + "'");
          }
          if (shardMb <= 0) {
            return usage("--shard-size-mb must be positive");
          }
        }
        default -> {
          return usage("unknown option " + a);
        }
      }
    }
    if (base == null || adapter == null || output == null) {
      return usage("--base, --adapter and --output are required");
    }
    long t0 = System.nanoTime();
    Merge.Result r;
    try {
      r = Merge.run(new Merge.Options(base, adapter, output, dtype, shardMb << 20, overwrite));
    } catch (java.io.IOException e) {
      // Input problems (missing files, bad headers, mismatched adapter) are the user's to fix:
      // one clear line, no stack trace.
      System.err.println("danlu merge: " + e.getMessage());
      return 1;
    }
    double secs = (System.nanoTime() - t0) / 1e9;
    System.out.printf(
        "merged %d LoRA weights into %d tensors: %d shard(s), %.1f MB, vocab %d, %.1f s,"
            + " peak heap %.0f MB -> %s%n",
        r.loraMerged(),
        r.tensors(),
        r.shards().size(),
        r.totalBytes() / 1e6,
        r.vocabSize(),
        secs,
        peakHeapBytes() / 1e6,
        output);
    return 0;
  }

  private static int usage(String why) {
    System.err.println("danlu merge: " + why + "\n" + USAGE);
    return 2;
  }

  /** Sum of the heap pools' peak usage since JVM start. */
  static long peakHeapBytes() {
    long sum = 0;
    for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
      if (p.getType() == MemoryType.HEAP) {
        sum += p.getPeakUsage().getUsed();
      }
    }
    return sum;
  }
}
