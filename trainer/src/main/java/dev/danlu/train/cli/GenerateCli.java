package dev.danlu.train.cli;

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
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * {@code danlu generate}: text from a Hugging Face LLaMA directory (optionally with a PEFT adapter
 * merged in memory), greedy at temperature 0, with a KV cache. The prompt and its continuation go
 * to stdout, everything else to stderr.
 */
public final class GenerateCli {
  private GenerateCli() {}

  static final String USAGE =
      "usage: danlu generate --model <hf dir> [--adapter <peft dir>] --prompt <text>"
          + " --max-new-tokens N [--temperature t (0 = greedy)] [--top-p p (0.9)] [--seed s (0)]"
          + " [--torch-dtype auto|float32|float16|bfloat16 (auto: the checkpoint's on CUDA,"
          + " float32 on CPU)]";

  public static int run(String[] args) throws Exception {
    return run(args, System.out, System.err);
  }

  public static int run(String[] args, PrintStream out, PrintStream err) throws Exception {
    Path model = null;
    Path adapter = null;
    String prompt = null;
    int maxNew = -1;
    double temperature = 0;
    double topP = 0.9;
    long seed = 0;
    TorchDtype torchDtype = TorchDtype.AUTO;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (a.equals("-h") || a.equals("--help")) {
        err.println(USAGE);
        return 0;
      }
      if (i + 1 >= args.length) {
        err.println("danlu generate: option " + a + " needs a value\n" + USAGE);
        return 2;
      }
      String v = args[++i];
      try {
        switch (a) {
          case "--model" -> model = Path.of(v);
          case "--adapter" -> adapter = Path.of(v);
          case "--prompt" -> prompt = v;
          case "--max-new-tokens" -> maxNew = Integer.parseInt(v);
          case "--temperature" -> temperature = Double.parseDouble(v);
          case "--top-p" -> topP = Double.parseDouble(v);
          case "--seed" -> seed = Long.parseLong(v);
          case "--torch-dtype" -> torchDtype = TorchDtype.parse(v);
          default -> {
            err.println("danlu generate: unknown option " + a + "\n" + USAGE);
            return 2;
          }
        }
      } catch (NumberFormatException e) {
        err.println("danlu generate: " + a + " expects a number, got '" + v + "'");
        return 2;
      } catch (IllegalArgumentException e) {
        err.println("danlu generate: " + e.getMessage() + "\n" + USAGE);
        return 2;
      }
    }
    if (model == null || prompt == null || maxNew < 0) {
      err.println("danlu generate: --model, --prompt and --max-new-tokens are required\n" + USAGE);
      return 2;
    }
    Path tokFile = model.resolve("tokenizer.model");
    if (!Files.isRegularFile(tokFile)) {
      err.println(
          "danlu generate: " + tokFile + " not found (the model directory needs its tokenizer)");
      return 1;
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
        return 1;
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
    return 0;
  }
}
