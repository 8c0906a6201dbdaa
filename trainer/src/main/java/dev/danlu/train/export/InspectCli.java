package dev.danlu.train.export;

import dev.danlu.data.cli.CliSupport;
import dev.danlu.train.checkpoint.HfCheckpoint;
import dev.danlu.train.checkpoint.PeftAdapter;
import dev.danlu.train.checkpoint.SafeTensors;
import dev.danlu.train.checkpoint.TensorInfo;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code danlu inspect <file.gguf | file.safetensors | hf model dir | peft adapter dir>}: metadata
 * and tensor table for operators. Headers are validated as on load (a truncated file or a header
 * that lies is a one-line error naming the file); nothing else of the data is read.
 */
@Command(
    name = "inspect",
    sortOptions = false,
    description = {
      "Print the metadata and tensor table of a GGUF file, a safetensors file, a Hugging Face"
          + " model directory or a PEFT adapter directory.",
      ""
    })
public final class InspectCli implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "<path>",
      description = "A .gguf or .safetensors file, or a model or adapter directory.")
  private Path path;

  @Option(
      names = "--max-tensors",
      paramLabel = "<n>",
      converter = CliSupport.PositiveLong.class,
      description = "Print at most n tensor rows (default: all).")
  private long maxTensors = Long.MAX_VALUE;

  private final PrintStream out;

  public InspectCli() {
    this(System.out);
  }

  public InspectCli(PrintStream out) {
    this.out = out;
  }

  public static int run(String[] args, PrintStream out, PrintStream err) {
    return CliSupport.execute(new InspectCli(out), args, out, err);
  }

  @Override
  public Integer call() throws IOException {
    if (!Files.exists(path)) {
      throw new IOException(path + ": no such file or directory");
    }
    String n = path.getFileName().toString();
    if (Files.isDirectory(path)) {
      if (Files.isRegularFile(path.resolve(PeftAdapter.CONFIG))) {
        out.println(path + ": PEFT adapter, " + PeftAdapter.CONFIG + ":");
        out.println(Files.readString(path.resolve(PeftAdapter.CONFIG)).strip());
        try (SafeTensors st = SafeTensors.open(path.resolve(PeftAdapter.WEIGHTS))) {
          safetensors(st);
        }
      } else {
        try (HfCheckpoint ck = HfCheckpoint.open(path)) {
          Path cfg = path.resolve("config.json");
          out.println(
              path + ": Hugging Face model" + (Files.isRegularFile(cfg) ? ", config.json:" : ""));
          if (Files.isRegularFile(cfg)) {
            out.println(Files.readString(cfg).strip());
          }
          long total = 0;
          out.printf("%d tensors%n", ck.names().size());
          long shown = 0;
          for (String t : ck.names()) {
            TensorInfo i = ck.info(t);
            total += i.byteSize();
            if (shown++ < maxTensors) {
              out.printf("  %-56s %-5s %s%n", t, i.dtype(), Arrays.toString(i.shape()));
            }
          }
          out.printf("%.1f MB of tensor data%n", total / 1e6);
        }
      }
    } else if (n.endsWith(".safetensors")) {
      try (SafeTensors st = SafeTensors.open(path)) {
        out.println(path + ": safetensors");
        safetensors(st);
      }
    } else {
      gguf(GgufFile.open(path));
    }
    return CliSupport.OK;
  }

  private void safetensors(SafeTensors st) {
    st.metadata().forEach((k, v) -> out.printf("  __metadata__.%s = %s%n", k, v));
    out.printf("%d tensors%n", st.names().size());
    long total = 0;
    long shown = 0;
    for (String t : st.names()) {
      TensorInfo i = st.info(t);
      total += i.byteSize();
      if (shown++ < maxTensors) {
        out.printf("  %-56s %-5s %s%n", t, i.dtype(), Arrays.toString(i.shape()));
      }
    }
    out.printf("%.1f MB of tensor data%n", total / 1e6);
  }

  private void gguf(GgufFile g) {
    out.printf(
        "%s: GGUF v%d, %d metadata keys, %d tensors, %d bytes%n",
        g.file(), g.version(), g.metadata().size(), g.tensors().size(), g.size());
    for (Map.Entry<String, Gguf.Value> e : g.metadata().entrySet()) {
      Gguf.Value v = e.getValue();
      out.printf("  %-44s %-5s %s%n", e.getKey(), Gguf.typeName(v.type()), v.render());
    }
    long shown = 0;
    for (GgufFile.TensorEntry t : g.tensors().values()) {
      if (shown++ < maxTensors) {
        out.printf(
            "  %-40s %-5s %-22s %10d bytes @ %d%n",
            t.spec().name(),
            t.spec().type().ggmlName(),
            Arrays.toString(t.spec().ne()),
            t.spec().bytes(),
            t.start());
      }
    }
  }
}
