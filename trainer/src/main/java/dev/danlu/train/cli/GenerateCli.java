package dev.danlu.train.cli;

import dev.danlu.data.cli.CliSupport;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraMerge;
import dev.danlu.train.lora.PeftBridge;
import dev.danlu.train.model.Generator;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.model.Sampler;
import dev.danlu.train.tensor.Backend;
import dev.danlu.train.tensor.TorchDtype;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import org.nd4j.linalg.api.buffer.DataType;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;
import picocli.CommandLine.TypeConversionException;

/**
 * {@code danlu generate}: text from a Hugging Face LLaMA directory (optionally with a PEFT adapter
 * merged in memory), greedy at temperature 0, with a KV cache. The prompt and its continuation go
 * to stdout, everything else to stderr.
 */
@Command(
    name = "generate",
    sortOptions = false,
    description = {
      "Generate text with a LLaMA model (+ PEFT adapter).",
      "A Hugging Face LLaMA directory, optionally with a PEFT adapter merged in memory, with a"
          + " KV cache. The prompt and its continuation go to stdout, everything else to stderr.",
      ""
    })
public final class GenerateCli implements Callable<Integer> {
  @Option(
      names = "--model",
      required = true,
      paramLabel = "<hf dir>",
      description = "Hugging Face LLaMA directory (config.json, *.safetensors, tokenizer.model).")
  private Path model;

  @Option(
      names = "--adapter",
      paramLabel = "<peft dir>",
      description = "PEFT LoRA adapter directory to merge in memory.")
  private Path adapter;

  @Option(
      names = "--prompt",
      required = true,
      paramLabel = "<text>",
      description = "The prompt (may be empty: generation starts from BOS).")
  private String prompt;

  @Option(
      names = "--max-new-tokens",
      required = true,
      paramLabel = "<n>",
      converter = CliSupport.NonNegativeInt.class,
      description = "Tokens to generate at most (stops early at EOS or BOS).")
  private int maxNew;

  @Option(
      names = "--temperature",
      paramLabel = "<t>",
      description = "Sampling temperature (default 0 = greedy).")
  private double temperature = 0;

  @Option(
      names = "--top-p",
      paramLabel = "<p>",
      description = "Nucleus sampling threshold (default 0.9).")
  private double topP = 0.9;

  @Option(names = "--seed", paramLabel = "<s>", description = "Sampling seed (default 0).")
  private long seed = 0;

  @Option(
      names = "--torch-dtype",
      paramLabel = "auto|float32|float16|bfloat16",
      converter = TorchDtypeConverter.class,
      description =
          "Weights' dtype in memory (default auto: the checkpoint's on CUDA, float32 on CPU).")
  private TorchDtype torchDtype = TorchDtype.AUTO;

  private final PrintStream out;
  private final PrintStream err;

  public GenerateCli() {
    this(System.out, System.err);
  }

  public GenerateCli(PrintStream out, PrintStream err) {
    this.out = out;
    this.err = err;
  }

  public static int run(String[] args) {
    return run(args, System.out, System.err);
  }

  public static int run(String[] args, PrintStream out, PrintStream err) {
    return CliSupport.execute(new GenerateCli(out, err), args, out, err);
  }

  @Override
  public Integer call() throws IOException {
    Path tokFile = model.resolve("tokenizer.model");
    if (!Files.isRegularFile(tokFile)) {
      err.println(
          "danlu generate: " + tokFile + " not found (the model directory needs its tokenizer)");
      return CliSupport.FAILED;
    }
    Backend.Kind backend = Backend.select();
    long t0 = System.nanoTime();
    LlamaWeights w = HfLlama.load(model, torchDtype, backend);
    if (adapter != null) {
      LoraAdapter ad = PeftBridge.load(adapter, w.config(), DataType.FLOAT);
      w = LoraMerge.merge(w, ad);
      err.printf(
          "danlu generate: merged adapter %s (r=%d, scaling %.3g)%n",
          adapter, ad.config.rank(), ad.scaling());
    }
    try (TextTokenizer tok = TextTokenizer.load(tokFile)) {
      if (tok.vocabSize() > w.config().vocabSize()) {
        err.printf(
            "danlu generate: tokenizer %s has %d pieces but the model only %d embeddings;"
                + " pass the adapter that resized the vocabulary (--adapter)%n",
            tokFile, tok.vocabSize(), w.config().vocabSize());
        return CliSupport.FAILED;
      }
      int[] text = tok.encode(prompt);
      int[] ids = new int[text.length + 1];
      ids[0] = tok.bosId();
      System.arraycopy(text, 0, ids, 1, text.length);
      int maxLen = ids.length + Math.max(0, maxNew - 1);
      err.printf(
          "danlu generate: %s, %d prompt tokens, weights stored as %s (%d MB), loaded in %.1f s%n",
          model,
          ids.length,
          w.storageType(),
          w.storageBytes() >> 20,
          (System.nanoTime() - t0) / 1e9);
      long t1 = System.nanoTime();
      Generator g = new Generator(w, maxLen);
      // stop at EOS, and at BOS as llama2.c does (a story model starts a new story with BOS)
      int[] gen =
          g.generate(ids, maxNew, new Sampler(temperature, topP, seed), tok.eosId(), tok.bosId());
      double secs = (System.nanoTime() - t1) / 1e9;
      int[] all = Arrays.copyOfRange(ids, 1, ids.length + gen.length);
      System.arraycopy(gen, 0, all, ids.length - 1, gen.length);
      PrintStream utf8 = new PrintStream(out, true, StandardCharsets.UTF_8);
      utf8.println(tok.decode(all));
      utf8.flush();
      err.printf(
          "danlu generate: %d new tokens in %.2f s (%.1f tokens/s)%n",
          gen.length, secs, (ids.length + gen.length) / Math.max(secs, 1e-9));
    }
    return CliSupport.OK;
  }

  /** {@link TorchDtype#parse}: a bad name is a usage error naming {@code --torch-dtype}. */
  static final class TorchDtypeConverter implements ITypeConverter<TorchDtype> {
    @Override
    public TorchDtype convert(String v) {
      try {
        return TorchDtype.parse(v);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
    }
  }
}
