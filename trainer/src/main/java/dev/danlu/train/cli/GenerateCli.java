package dev.danlu.train.cli;

import dev.danlu.data.cli.CliSupport;
import dev.danlu.data.sft.Alpaca2Template;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraMerge;
import dev.danlu.train.lora.PeftBridge;
import dev.danlu.train.model.Generator;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.model.NtkAlpha;
import dev.danlu.train.model.Sampler;
import dev.danlu.train.tensor.Backend;
import dev.danlu.train.tensor.TorchDtype;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import org.nd4j.linalg.api.buffer.DataType;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.TypeConversionException;

/**
 * {@code danlu generate}: text from a Hugging Face LLaMA directory (optionally with a PEFT adapter
 * merged in memory), greedy at temperature 0, with a KV cache. {@code --prompt} continues a text
 * (the prompt and its continuation go to stdout); {@code --instruction} answers one instruction in
 * the Alpaca-2 template and {@code --chat} holds a multi-turn conversation ({@link ChatPrompt}),
 * both with Chinese-LLaMA-Alpaca-2's chat sampling defaults. Everything else goes to stderr.
 */
@Command(
    name = "generate",
    sortOptions = false,
    description = {
      "Generate text with a LLaMA model (+ PEFT adapter).",
      "A Hugging Face LLaMA directory, optionally with a PEFT adapter merged in memory, with a"
          + " KV cache. --prompt continues a text (prompt and continuation go to stdout);"
          + " --instruction answers one instruction in the Alpaca-2 template (only the answer goes"
          + " to stdout); --chat talks on stdin/stdout, turns joined as Chinese-LLaMA-Alpaca-2's"
          + " gradio demo joins them (an empty line or end of input ends, /clear forgets the"
          + " history). Everything else goes to stderr.",
      ""
    })
public final class GenerateCli implements Callable<Integer> {
  /** Chinese-LLaMA-Alpaca-2 inference_hf.py's GenerationConfig (lines 102-110). */
  static final double CHAT_TEMPERATURE = 0.2;

  static final int CHAT_TOP_K = 40;
  static final double CHAT_TOP_P = 0.9;
  static final double CHAT_REPETITION_PENALTY = 1.1;
  static final int CHAT_MAX_NEW_TOKENS = 400;

  /** What --chat prints before reading each instruction. */
  static final String CHAT_MARKER = "> ";

  @Spec private CommandSpec spec;

  /** --store-kv-before-rope, or its default for the model's rotary settings. */
  private boolean storeKv(LlamaWeights w) {
    return storeKvBeforeRope != null
        ? storeKvBeforeRope
        : Generator.defaultStoreKvBeforeRope(w.config());
  }

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
      paramLabel = "<text>",
      description = "Text to continue (may be empty: generation starts from BOS).")
  private String prompt;

  @Option(
      names = "--instruction",
      paramLabel = "<text>",
      description =
          "Answer one instruction: wrapped in the Alpaca-2 template, only the answer is printed.")
  private String instruction;

  @Option(
      names = "--chat",
      description = "Multi-turn chat on stdin/stdout in the Alpaca-2 template.")
  private boolean chat;

  @Option(
      names = "--system-prompt",
      paramLabel = "<text>",
      description =
          "System prompt of the Alpaca-2 template (default: \"You are a helpful assistant."
              + " 你是一个乐于助人的助手。\").")
  private String systemPrompt;

  @Option(
      names = "--max-memory",
      paramLabel = "<n>",
      converter = CliSupport.PositiveInt.class,
      description =
          "--chat: prompt tokens to keep; older turns are dropped beyond it (default 1024).")
  private int maxMemory = ChatPrompt.DEFAULT_MAX_MEMORY;

  @Option(
      names = "--ntk-alpha",
      paramLabel = "auto|<alpha>",
      description =
          "The reference's NTK rotary scaling for contexts past max_position_embeddings: auto"
              + " (alpha from the current length) or a fixed alpha such as 2.0; combined with the"
              + " model's linear rope_scaling (docs/long-context.md). Default: none.")
  private String ntkAlpha;

  @Option(
      names = "--store-kv-before-rope",
      negatable = true,
      description =
          "Cache keys before rotary and rotate them on read with the current length's tables"
              + " (the reference's store_kv_before_rope). Default: on with --ntk-alpha auto, off"
              + " otherwise.")
  private Boolean storeKvBeforeRope;

  @Option(
      names = "--show-prompt",
      description = "Print the prompt text and its token ids on stderr before generating.")
  private boolean showPrompt;

  @Option(
      names = "--max-new-tokens",
      paramLabel = "<n>",
      converter = CliSupport.NonNegativeInt.class,
      description =
          "Tokens to generate at most (stops early at EOS; with --prompt also at BOS). Required"
              + " with --prompt; default 400 with --instruction / --chat.")
  private Integer maxNew;

  @Option(
      names = "--temperature",
      paramLabel = "<t>",
      description =
          "Sampling temperature, 0 = greedy (default 0; 0.2 with --instruction / --chat).")
  private Double temperature;

  @Option(
      names = "--top-k",
      paramLabel = "<k>",
      converter = CliSupport.NonNegativeInt.class,
      description =
          "Sample among the k most likely tokens, 0 = all (default 0; 40 with"
              + " --instruction / --chat).")
  private Integer topK;

  @Option(
      names = "--top-p",
      paramLabel = "<p>",
      description = "Nucleus sampling threshold (default 0.9).")
  private Double topP;

  @Option(
      names = "--repetition-penalty",
      paramLabel = "<r>",
      converter = CliSupport.PositiveNumber.class,
      description =
          "Divide positive (multiply negative) logits of tokens already seen by r, 1 = off"
              + " (default 1; 1.1 with --instruction / --chat).")
  private Double repetitionPenalty;

  @Option(names = "--seed", paramLabel = "<s>", description = "Sampling seed (default 0).")
  private long seed = 0;

  @Option(
      names = "--torch-dtype",
      paramLabel = "auto|float32|float16|bfloat16",
      converter = TorchDtypeConverter.class,
      description =
          "Weights' dtype in memory (default auto: the checkpoint's on CUDA, float32 on CPU).")
  private TorchDtype torchDtype = TorchDtype.AUTO;

  private final InputStream in;
  private final PrintStream out;
  private final PrintStream err;

  public GenerateCli() {
    this(System.in, System.out, System.err);
  }

  public GenerateCli(PrintStream out, PrintStream err) {
    this(System.in, out, err);
  }

  public GenerateCli(InputStream in, PrintStream out, PrintStream err) {
    this.in = in;
    this.out = out;
    this.err = err;
  }

  public static int run(String[] args) {
    return run(args, System.out, System.err);
  }

  public static int run(String[] args, PrintStream out, PrintStream err) {
    return run(args, System.in, out, err);
  }

  public static int run(String[] args, InputStream in, PrintStream out, PrintStream err) {
    return CliSupport.execute(new GenerateCli(in, out, err), args, out, err);
  }

  @Override
  public Integer call() throws IOException {
    int modes = (prompt != null ? 1 : 0) + (instruction != null ? 1 : 0) + (chat ? 1 : 0);
    if (modes == 0) {
      throw CliSupport.usageError(
          spec, "Missing required option: one of '--prompt', '--instruction' or '--chat'");
    }
    if (modes > 1) {
      throw CliSupport.usageError(
          spec, "--prompt, --instruction and --chat are mutually exclusive: give one");
    }
    boolean instruct = prompt == null;
    if (!instruct && maxNew == null) {
      throw CliSupport.usageError(spec, "Missing required option: '--max-new-tokens=<n>'");
    }
    if (!instruct && systemPrompt != null) {
      throw CliSupport.usageError(spec, "--system-prompt needs --instruction or --chat");
    }
    int maxNewTokens = maxNew != null ? maxNew : CHAT_MAX_NEW_TOKENS;
    Sampler sampler;
    try {
      sampler =
          new Sampler(
              orDefault(temperature, instruct ? CHAT_TEMPERATURE : 0),
              orDefault(topP, CHAT_TOP_P),
              topK != null ? topK : instruct ? CHAT_TOP_K : 0,
              orDefault(repetitionPenalty, instruct ? CHAT_REPETITION_PENALTY : 1.0),
              seed);
    } catch (IllegalArgumentException e) {
      throw CliSupport.usageError(spec, e.getMessage());
    }
    String system = systemPrompt != null ? systemPrompt : Alpaca2Template.DEFAULT_SYSTEM_PROMPT;

    Path tokFile = model.resolve("tokenizer.model");
    if (!Files.isRegularFile(tokFile)) {
      err.println(
          "danlu generate: " + tokFile + " not found (the model directory needs its tokenizer)");
      return CliSupport.FAILED;
    }
    NtkAlpha ntk;
    try {
      ntk = NtkAlpha.parse(ntkAlpha, "--ntk-alpha");
    } catch (IllegalArgumentException e) {
      throw CliSupport.usageError(spec, e.getMessage());
    }
    Backend.Kind backend = Backend.select();
    long t0 = System.nanoTime();
    LlamaWeights w = HfLlama.load(model, torchDtype, backend);
    if (adapter != null) { // an adapter trained with position interpolation needs its rotary
      w = HfLlama.withTrainedRope(w, adapter);
    }
    if (!ntk.isNone()) {
      try {
        w = w.withNtk(ntk);
      } catch (IllegalArgumentException e) {
        err.println("danlu generate: " + model.resolve("config.json") + ": " + e.getMessage());
        return CliSupport.FAILED;
      }
      err.printf("danlu generate: NTK alpha %s%n", ntk);
    }
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
      err.printf(
          "danlu generate: %s, weights stored as %s (%d MB), loaded in %.1f s%n",
          model, w.storageType(), w.storageBytes() >> 20, (System.nanoTime() - t0) / 1e9);
      PrintStream utf8 = new PrintStream(out, true, StandardCharsets.UTF_8);
      if (chat) {
        chat(w, tok, sampler, system, maxNewTokens, utf8);
      } else if (instruction != null) {
        String text = Alpaca2Template.prompt(instruction, system);
        utf8.println(answer(w, tok, sampler, text, ChatPrompt.ids(text, tok), maxNewTokens));
      } else {
        continueText(w, tok, sampler, maxNewTokens, utf8);
      }
      utf8.flush();
    }
    return CliSupport.OK;
  }

  /** --prompt: BOS + the text, continued; prints the text and its continuation. */
  private void continueText(
      LlamaWeights w, TextTokenizer tok, Sampler sampler, int maxNewTokens, PrintStream utf8) {
    int[] text = tok.encode(prompt);
    int[] ids = new int[text.length + 1];
    ids[0] = tok.bosId();
    System.arraycopy(text, 0, ids, 1, text.length);
    show(prompt, ids);
    // stop at EOS, and at BOS as llama2.c does (a story model starts a new story with BOS)
    int[] gen = generate(w, sampler, ids, maxNewTokens, tok.eosId(), tok.bosId());
    int[] all = Arrays.copyOfRange(ids, 1, ids.length + gen.length);
    System.arraycopy(gen, 0, all, ids.length - 1, gen.length);
    utf8.println(tok.decode(all));
  }

  /**
   * --chat: reads instructions line by line until an empty line or the end of input; {@code /clear}
   * forgets the history (the gradio demo's "Clear History" button).
   */
  private void chat(
      LlamaWeights w,
      TextTokenizer tok,
      Sampler sampler,
      String system,
      int maxNewTokens,
      PrintStream utf8)
      throws IOException {
    BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
    List<ChatPrompt.Turn> history = new ArrayList<>();
    while (true) {
      utf8.print(CHAT_MARKER);
      utf8.flush();
      String line = reader.readLine();
      if (line == null || line.isBlank()) {
        utf8.println();
        return;
      }
      if (line.strip().equals("/clear")) {
        history.clear();
        err.println("danlu generate: history cleared");
        continue;
      }
      ChatPrompt.Built p = ChatPrompt.build(history, line, system, tok, maxMemory);
      if (p.droppedTurns() > 0) {
        err.printf(
            "danlu generate: the prompt exceeds --max-memory %d tokens; dropped the %d oldest"
                + " turn(s)%n",
            maxMemory, p.droppedTurns());
        history.subList(0, p.droppedTurns()).clear();
      }
      String response = answer(w, tok, sampler, p.text(), p.ids(), maxNewTokens);
      utf8.println(response);
      history.add(new ChatPrompt.Turn(line, response));
    }
  }

  /**
   * Generates after {@code ids} until EOS or {@code maxNewTokens} (the reference passes only {@code
   * eos_token_id}) and returns the answer as the reference prints it: decoded without special
   * tokens, stripped.
   */
  private String answer(
      LlamaWeights w,
      TextTokenizer tok,
      Sampler sampler,
      String text,
      int[] ids,
      int maxNewTokens) {
    show(text, ids);
    int[] gen = generate(w, sampler, ids, maxNewTokens, tok.eosId());
    int[] kept =
        Arrays.stream(gen)
            .filter(t -> t != tok.bosId() && t != tok.eosId() && t != tok.padId())
            .toArray();
    return tok.decode(kept).strip();
  }

  private int[] generate(
      LlamaWeights w, Sampler sampler, int[] ids, int maxNewTokens, int... stop) {
    long t1 = System.nanoTime();
    Generator g = new Generator(w, ids.length + Math.max(0, maxNewTokens - 1), storeKv(w));
    int[] gen = g.generate(ids, maxNewTokens, sampler, stop);
    double secs = (System.nanoTime() - t1) / 1e9;
    err.printf(
        "danlu generate: %d prompt tokens, %d new tokens in %.2f s (%.1f tokens/s)%n",
        ids.length, gen.length, secs, (ids.length + gen.length) / Math.max(secs, 1e-9));
    return gen;
  }

  private void show(String text, int[] ids) {
    if (showPrompt) {
      PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8);
      e.println("danlu generate: prompt text: " + text);
      e.println("danlu generate: prompt ids: " + Arrays.toString(ids));
      e.flush();
    }
  }

  private static double orDefault(Double v, double d) {
    return v != null ? v : d;
  }

  /** {@link TorchDtype#parse}: a bad name is a usage error naming {@code --torch-dtype}. */
  public static final class TorchDtypeConverter implements ITypeConverter<TorchDtype> {
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
