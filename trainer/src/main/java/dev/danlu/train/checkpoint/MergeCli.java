package dev.danlu.train.checkpoint;

import dev.danlu.data.cli.CliSupport;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;
import picocli.CommandLine.TypeConversionException;

/**
 * {@code danlu merge --base <hf dir> --adapter <peft dir> --output <dir> [--dtype f16|bf16|f32]
 * [--shard-size-mb N] [--overwrite]}: command-line front of {@link Merge}. Prints a one-line
 * summary (with the JVM's peak heap, the number that shows the merge streams) on stdout.
 */
@Command(
    name = "merge",
    sortOptions = false,
    description = {
      "Merge a PEFT LoRA adapter into its base model (Hugging Face safetensors out).",
      "W += B@A * alpha/r, embed_tokens/lm_head replaced, written as a Hugging Face directory"
          + " (safetensors shards + index, config.json, tokenizer files).",
      ""
    })
public final class MergeCli implements Callable<Integer> {
  @Option(
      names = "--base",
      required = true,
      paramLabel = "<hf model dir>",
      description = "The base model (Hugging Face LLaMA directory).")
  private Path base;

  @Option(
      names = "--adapter",
      required = true,
      paramLabel = "<peft adapter dir>",
      description = "The PEFT LoRA adapter trained on it.")
  private Path adapter;

  @Option(
      names = "--output",
      required = true,
      paramLabel = "<dir>",
      description = "Where the merged model goes.")
  private Path output;

  @Option(
      names = "--dtype",
      paramLabel = "f16|bf16|f32",
      converter = OutputDtype.class,
      description = "Dtype of the merged weights (default: each keeps the base model's dtype).")
  private DType dtype;

  @Option(
      names = "--shard-size-mb",
      paramLabel = "<n>",
      converter = CliSupport.PositiveLong.class,
      description = "Largest safetensors shard in MB (default 5000).")
  private long shardMb = 5000;

  @Option(names = "--overwrite", description = "Replace an existing --output directory.")
  private boolean overwrite;

  private final PrintStream out;

  public MergeCli() {
    this(System.out);
  }

  public MergeCli(PrintStream out) {
    this.out = out;
  }

  /** Runs the command; returns the exit code (2 for usage errors). */
  public static int run(String[] args) {
    return run(args, System.out, System.err);
  }

  public static int run(String[] args, PrintStream out, PrintStream err) {
    return CliSupport.execute(new MergeCli(out), args, out, err);
  }

  @Override
  public Integer call() throws IOException {
    long t0 = System.nanoTime();
    // input problems (missing files, bad headers, mismatched adapter) are IOExceptions: one line
    Merge.Result r =
        Merge.run(new Merge.Options(base, adapter, output, dtype, shardMb << 20, overwrite));
    double secs = (System.nanoTime() - t0) / 1e9;
    out.printf(
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
    return CliSupport.OK;
  }

  /** f16, bf16 or f32 (the names {@link DType#parse} takes for them). */
  static final class OutputDtype implements ITypeConverter<DType> {
    @Override
    public DType convert(String v) {
      DType d;
      try {
        d = DType.parse(v);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
      if (d != DType.F32 && d != DType.F16 && d != DType.BF16) {
        throw new TypeConversionException("'" + v + "' is not f16, bf16 or f32");
      }
      return d;
    }
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
