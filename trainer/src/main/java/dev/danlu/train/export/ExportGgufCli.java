package dev.danlu.train.export;

import dev.danlu.data.cli.CliSupport;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;
import picocli.CommandLine.TypeConversionException;

/**
 * {@code danlu export-gguf --model <hf dir> [--adapter <dir>] --output <file.gguf> --type <t>
 * [--shard-size-mb N] [--lora-gguf <file>]}: front of {@link GgufExport} and {@link LoraGguf}
 * (docs/export.md). Prints one summary line per file written, with the JVM's peak heap.
 */
@Command(
    name = "export-gguf",
    sortOptions = false,
    description = {
      "Export a Hugging Face LLaMA model (optionally merging a PEFT adapter on the fly) to GGUF"
          + " for llama.cpp, with llama.cpp's quantization types.",
      ""
    })
public final class ExportGgufCli implements Callable<Integer> {
  @Option(
      names = "--model",
      required = true,
      paramLabel = "<hf model dir>",
      description = "The model (Hugging Face LLaMA directory with tokenizer.model).")
  private Path model;

  @Option(
      names = "--adapter",
      paramLabel = "<peft adapter dir>",
      description = "A PEFT LoRA adapter to merge into the model while exporting.")
  private Path adapter;

  @Option(
      names = "--output",
      paramLabel = "<file.gguf>",
      description = "The GGUF file to write (with --shard-size-mb: <name>-0000i-of-0000n.gguf).")
  private Path output;

  @Option(
      names = "--type",
      paramLabel = "<type>",
      converter = TypeConverter.class,
      description =
          "f32, f16, q8_0, q4_0, q4_k_m, q5_k_m or q6_k (default f16; --lora-gguf: f32 or f16).")
  private ExportType type = ExportType.F16;

  @Option(
      names = "--shard-size-mb",
      paramLabel = "<n>",
      converter = CliSupport.PositiveLong.class,
      description = "Split the output into files of at most n MB of tensor data (gguf-split).")
  private long shardMb;

  @Option(
      names = "--lora-gguf",
      paramLabel = "<file.gguf>",
      description =
          "Also (or only, without --output) write --adapter alone as a llama.cpp LoRA GGUF,"
              + " to apply at load time with llama.cpp's --lora.")
  private Path loraGguf;

  @Option(names = "--overwrite", description = "Replace existing output files.")
  private boolean overwrite;

  private final PrintStream out;

  public ExportGgufCli() {
    this(System.out);
  }

  public ExportGgufCli(PrintStream out) {
    this.out = out;
  }

  public static int run(String[] args, PrintStream out, PrintStream err) {
    return CliSupport.execute(new ExportGgufCli(out), args, out, err);
  }

  @Override
  public Integer call() throws IOException {
    if (output == null && loraGguf == null) {
      throw new IllegalArgumentException(
          "give --output <file.gguf>, --lora-gguf <file.gguf> or both");
    }
    if (loraGguf != null && adapter == null) {
      throw new IllegalArgumentException("--lora-gguf needs --adapter <peft adapter dir>");
    }
    long t0 = System.nanoTime();
    if (output != null) {
      GgufExport.Result r =
          GgufExport.run(
              new GgufExport.Options(model, adapter, output, type, shardMb << 20, overwrite));
      for (String f : r.fallbacks()) {
        out.println("export-gguf: " + f);
      }
      out.printf(
          "exported %d tensors (%s)%s, vocab %d, %s: %d file(s), %.1f MB, %.1f s, peak heap %.0f MB"
              + " -> %s%n",
          r.tensors(),
          r.typeCounts().entrySet().stream()
              .map(e -> e.getValue() + " " + e.getKey().ggmlName())
              .collect(Collectors.joining(", ")),
          adapter == null ? "" : ", " + r.loraMerged() + " LoRA weights merged",
          r.vocab(),
          type.cliName(),
          r.files().size(),
          r.bytes() / 1e6,
          (System.nanoTime() - t0) / 1e9,
          peakHeapBytes() / 1e6,
          r.files().get(0));
    }
    if (loraGguf != null) {
      // the adapter file's type follows --type when that is f32/f16; next to a quantized model
      // export it is f16, as convert_lora_to_gguf.py's default
      GgmlType lt = type == ExportType.F32 ? GgmlType.F32 : GgmlType.F16;
      if (output == null && type.quantized()) {
        throw new IllegalArgumentException("--type for --lora-gguf must be f32 or f16");
      }
      long bytes = LoraGguf.write(model, adapter, loraGguf, lt, overwrite);
      out.printf("wrote LoRA adapter %s (%s, %.1f MB)%n", loraGguf, lt.ggmlName(), bytes / 1e6);
    }
    return CliSupport.OK;
  }

  /** The --type values. */
  static final class TypeConverter implements ITypeConverter<ExportType> {
    @Override
    public ExportType convert(String v) {
      try {
        return ExportType.parse(v);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
    }
  }

  /** Sum of the heap pools' peak usage since JVM start (as {@code danlu merge} reports it). */
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
