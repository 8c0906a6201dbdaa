package dev.danlu.train.serve;

import dev.danlu.data.cli.CliSupport;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.train.cli.GenerateCli;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraMerge;
import dev.danlu.train.lora.PeftBridge;
import dev.danlu.train.model.Generator;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.model.NtkAlpha;
import dev.danlu.train.tensor.Backend;
import dev.danlu.train.tensor.TorchDtype;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.nd4j.linalg.api.buffer.DataType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code danlu serve}: the model (optionally with a PEFT adapter merged in memory, as {@code
 * generate} loads them) behind an OpenAI-compatible HTTP API with continuous batching, plus a chat
 * page at {@code /}. Runs until interrupted. docs/serving.md describes the endpoints and limits.
 */
@Command(
    name = "serve",
    sortOptions = false,
    description = {
      "Serve a LLaMA model (+ PEFT adapter) over an OpenAI-compatible HTTP API.",
      "POST /v1/chat/completions (Alpaca-2 template), /v1/completions, /v1/embeddings;"
          + " GET /v1/models, /health, /metrics (Prometheus) and a chat page at /. Concurrent"
          + " requests decode together (continuous batching). Binds 127.0.0.1 unless --host says"
          + " otherwise; runs until interrupted. See docs/serving.md.",
      ""
    })
public final class ServeCli implements Callable<Integer> {
  /** The environment variable read when --api-key is not given (keeps the key out of ps). */
  public static final String API_KEY_ENV = "DANLU_SERVE_API_KEY";

  @Spec private CommandSpec spec;

  @Option(
      names = "--model",
      required = true,
      paramLabel = "<hf dir>",
      description = "Hugging Face LLaMA directory (config.json, *.safetensors, tokenizer.model).")
  private Path model;

  @Option(
      names = "--adapter",
      paramLabel = "<peft dir>",
      description =
          "PEFT LoRA adapter directory to merge in memory (its tokenizer.model, if any, is used).")
  private Path adapter;

  @Option(
      names = "--host",
      paramLabel = "<addr>",
      description = "Address to bind (default 127.0.0.1: this machine only).")
  private String host = "127.0.0.1";

  @Option(
      names = "--port",
      paramLabel = "<port>",
      description = "TCP port (default 8000; 0 picks a free one, printed at start).")
  private int port = 8000;

  @Option(
      names = "--api-key",
      paramLabel = "<key>",
      description =
          "Require 'Authorization: Bearer <key>' on /v1/* (default: $"
              + API_KEY_ENV
              + ", else no key).")
  private String apiKey;

  @Option(
      names = "--max-batch",
      paramLabel = "<n>",
      converter = CliSupport.PositiveInt.class,
      description = "Sequences decoded together at most (default 8).")
  private int maxBatch = 8;

  @Option(
      names = "--max-queue",
      paramLabel = "<n>",
      converter = CliSupport.NonNegativeInt.class,
      description = "Sequences waiting for a slot at most; more get HTTP 429 (default 64).")
  private int maxQueue = 64;

  @Option(
      names = "--ctx",
      paramLabel = "<tokens>",
      converter = CliSupport.PositiveInt.class,
      description =
          "Context per request, prompt + max_tokens (default: the model's"
              + " max_position_embeddings).")
  private Integer ctx;

  @Option(
      names = "--max-body-bytes",
      paramLabel = "<n>",
      converter = CliSupport.PositiveInt.class,
      description = "Largest request body accepted; larger ones get HTTP 413 (default 1048576).")
  private int maxBodyBytes = 1 << 20;

  @Option(
      names = "--model-name",
      paramLabel = "<id>",
      description = "The model id /v1/models reports (default: the model directory's name).")
  private String modelName;

  @Option(
      names = "--ntk-alpha",
      paramLabel = "auto|<alpha>",
      description =
          "The reference's NTK rotary scaling for contexts past max_position_embeddings (as"
              + " generate's --ntk-alpha; docs/long-context.md). Default: none.")
  private String ntkAlpha;

  @Option(
      names = "--torch-dtype",
      paramLabel = "auto|float32|float16|bfloat16",
      converter = GenerateCli.TorchDtypeConverter.class,
      description =
          "Weights' dtype in memory (default auto: the checkpoint's on CUDA, float32 on CPU).")
  private TorchDtype torchDtype = TorchDtype.AUTO;

  private final PrintStream err;
  private final CountDownLatch stop = new CountDownLatch(1);

  public ServeCli() {
    this(System.err);
  }

  public ServeCli(PrintStream err) {
    this.err = err;
  }

  /** Ends {@link #call} as an interrupt would (tests). */
  void stop() {
    stop.countDown();
  }

  @Override
  public Integer call() throws IOException, InterruptedException {
    NtkAlpha ntk;
    try {
      ntk = NtkAlpha.parse(ntkAlpha, "--ntk-alpha");
    } catch (IllegalArgumentException e) {
      throw CliSupport.usageError(spec, e.getMessage());
    }
    if (port < 0 || port > 65535) {
      throw CliSupport.usageError(spec, "--port must be in 0..65535, got " + port);
    }
    Path tokFile = model.resolve("tokenizer.model");
    if (adapter != null && Files.isRegularFile(adapter.resolve("tokenizer.model"))) {
      tokFile = adapter.resolve("tokenizer.model");
    }
    if (!Files.isRegularFile(tokFile)) {
      err.println(
          "danlu serve: " + tokFile + " not found (the model directory needs its tokenizer)");
      return CliSupport.FAILED;
    }
    Backend.Kind backend = Backend.select();
    long t0 = System.nanoTime();
    LlamaWeights w = HfLlama.load(model, torchDtype, backend);
    if (!ntk.isNone()) {
      try {
        w = w.withNtk(ntk);
      } catch (IllegalArgumentException e) {
        err.println("danlu serve: " + model.resolve("config.json") + ": " + e.getMessage());
        return CliSupport.FAILED;
      }
    }
    if (adapter != null) {
      LoraAdapter ad = PeftBridge.load(adapter, w.config(), DataType.FLOAT);
      w = LoraMerge.merge(w, ad);
      err.printf("danlu serve: merged adapter %s (r=%d)%n", adapter, ad.config.rank());
    }
    String key = apiKey != null ? apiKey : System.getenv(API_KEY_ENV);
    if (key != null && key.isBlank()) {
      throw CliSupport.usageError(spec, "--api-key must not be blank");
    }
    int context = ctx != null ? ctx : w.config().maxPositionEmbeddings();
    String id =
        modelName != null ? modelName : model.toAbsolutePath().normalize().getFileName().toString();
    try (TextTokenizer tok = TextTokenizer.load(tokFile)) {
      if (tok.vocabSize() > w.config().vocabSize()) {
        err.printf(
            "danlu serve: tokenizer %s has %d pieces but the model only %d embeddings;"
                + " pass the adapter that resized the vocabulary (--adapter)%n",
            tokFile, tok.vocabSize(), w.config().vocabSize());
        return CliSupport.FAILED;
      }
      ApiServer.Options opt;
      try {
        opt =
            new ApiServer.Options(
                host,
                port,
                key,
                maxBatch,
                maxQueue,
                context,
                maxBodyBytes,
                id,
                Generator.defaultStoreKvBeforeRope(w.config()));
      } catch (IllegalArgumentException e) {
        throw CliSupport.usageError(spec, e.getMessage());
      }
      try (ApiServer server = new ApiServer(w, tok, opt)) {
        err.printf(
            "danlu serve: %s loaded in %.1f s; --max-batch %d, --max-queue %d, --ctx %d%s%n",
            id,
            (System.nanoTime() - t0) / 1e9,
            maxBatch,
            maxQueue,
            context,
            key != null ? ", API key required" : "");
        err.printf("danlu serve: listening on http://%s:%d/%n", host, server.port());
        err.flush();
        Runtime.getRuntime().addShutdownHook(new Thread(stop::countDown));
        stop.await();
      }
    }
    return CliSupport.OK;
  }
}
