package dev.danlu.train.eval;

import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.train.checkpoint.PeftAdapter;
import dev.danlu.train.checkpoint.SafeTensors;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraMerge;
import dev.danlu.train.lora.PeftBridge;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.model.NtkAlpha;
import dev.danlu.train.tensor.Backend;
import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * What an evaluation loads: a Hugging Face LLaMA directory, optionally a PEFT adapter (as {@code
 * generate} and {@code merge} take them), and the tokenizer that goes with them — the adapter's
 * {@code tokenizer.model} when it ships one (Chinese-LLaMA-Alpaca-2's adapters do, for the resized
 * vocabulary), else the model's, unless given. Paths are strings so a spec travels to executors.
 */
public record EvalModel(String model, String adapter, String tokenizer, String ntkAlpha)
    implements Serializable {
  /** Without NTK scaling. */
  public EvalModel(String model, String adapter, String tokenizer) {
    this(model, adapter, tokenizer, null);
  }

  /**
   * The spec with the tokenizer path resolved (the file is only needed, and checked, by the modes
   * that tokenize).
   */
  public static EvalModel resolve(Path model, Path adapter, Path tokenizer) throws IOException {
    return resolve(model, adapter, tokenizer, null);
  }

  /**
   * As {@link #resolve(Path, Path, Path)}, with the reference's NTK scaling of rotary ({@code
   * --ntk-alpha auto|<float>}, docs/long-context.md; null = none), checked here.
   */
  public static EvalModel resolve(Path model, Path adapter, Path tokenizer, String ntkAlpha)
      throws IOException {
    if (ntkAlpha != null) {
      NtkAlpha.parse(ntkAlpha, "--ntk-alpha"); // fails on a bad value before anything loads
    }
    if (!Files.isRegularFile(model.resolve("config.json"))) {
      throw new IOException(model + ": no config.json (pass a Hugging Face LLaMA directory)");
    }
    if (adapter != null && !Files.isRegularFile(adapter.resolve(PeftAdapter.CONFIG))) {
      throw new IOException(adapter + ": no " + PeftAdapter.CONFIG + " (pass a PEFT adapter dir)");
    }
    Path tok = tokenizer;
    if (tok == null) {
      Path fromAdapter = adapter == null ? null : adapter.resolve("tokenizer.model");
      tok =
          fromAdapter != null && Files.isRegularFile(fromAdapter)
              ? fromAdapter
              : model.resolve("tokenizer.model");
    }
    return new EvalModel(
        model.toString(), adapter == null ? null : adapter.toString(), tok.toString(), ntkAlpha);
  }

  /**
   * The vocabulary the model computes logits over: config.json's {@code vocab_size}, or the rows of
   * the adapter's own embed_tokens when it carries one (read from the file header only).
   */
  public int vocabSize() throws IOException {
    int v = LlamaConfig.load(Path.of(model)).vocabSize();
    if (adapter != null) {
      Path weights = Path.of(adapter).resolve(PeftAdapter.WEIGHTS);
      if (Files.isRegularFile(weights)) {
        try (SafeTensors st = SafeTensors.open(weights)) {
          if (st.contains(PeftAdapter.EMBED_KEY)) {
            v = Math.toIntExact(st.info(PeftAdapter.EMBED_KEY).shape()[0]);
          }
        }
      }
    }
    return v;
  }

  /** Fails naming both files unless the tokenizer has exactly the model's vocabulary. */
  public void checkVocabulary(TextTokenizer tok) throws IOException {
    int v = vocabSize();
    if (tok.vocabSize() != v) {
      throw new IOException(
          "tokenizer "
              + tokenizer
              + " has "
              + tok.vocabSize()
              + " pieces but the model "
              + (adapter != null ? model + " + adapter " + adapter : model)
              + " has a vocabulary of "
              + v
              + "; pass the tokenizer the model was trained with (--tokenizer) or the adapter"
              + " that resized the vocabulary (--adapter)");
    }
  }

  /** Base weights (float32) and the adapter unmerged (null without one). */
  public record Loaded(LlamaWeights weights, LoraAdapter adapter) {
    /** The weights with the adapter merged in (the weights themselves without one). */
    public LlamaWeights merged() {
      return adapter == null ? weights : LoraMerge.merge(weights, adapter);
    }
  }

  /** Loads the weights in float32 and the adapter unmerged. */
  public Loaded load() throws IOException {
    Backend.select();
    LlamaWeights w = HfLlama.load(Path.of(model), DataType.FLOAT);
    if (adapter != null) { // an adapter trained with position interpolation needs its rotary
      w = HfLlama.withTrainedRope(w, Path.of(adapter));
    }
    if (ntkAlpha != null) {
      NtkAlpha ntk = NtkAlpha.parse(ntkAlpha, "--ntk-alpha");
      if (!ntk.isNone()) {
        try {
          w = w.withNtk(ntk);
        } catch (IllegalArgumentException e) {
          throw new IOException(Path.of(model).resolve("config.json") + ": " + e.getMessage());
        }
      }
    }
    LoraAdapter ad =
        adapter == null ? null : PeftBridge.load(Path.of(adapter), w.config(), DataType.FLOAT);
    return new Loaded(w, ad);
  }
}
