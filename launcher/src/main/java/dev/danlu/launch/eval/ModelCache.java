package dev.danlu.launch.eval;

import dev.danlu.train.eval.EvalModel;
import dev.danlu.train.model.LlamaWeights;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.Map;

/**
 * One loaded model per executor JVM: evaluation tasks look their model up here by its spec (model
 * directory, adapter, tokenizer), so an executor loads it once however many tasks it runs — and in
 * local mode the executors are the driver's JVM, so the driver's tasks share it too. Loaded float32
 * weights are only read (never the half-precision scratch), so concurrent tasks can share them.
 */
final class ModelCache {
  private static final Map<EvalModel, EvalModel.Loaded> LOADED = new HashMap<>();
  private static final Map<EvalModel, LlamaWeights> MERGED = new HashMap<>();
  private static int loads;

  private ModelCache() {}

  /** The base weights and the unmerged adapter. */
  static synchronized EvalModel.Loaded get(EvalModel spec) {
    EvalModel.Loaded l = LOADED.get(spec);
    if (l == null) {
      try {
        l = spec.load();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      loads++;
      LOADED.clear(); // one model per JVM at a time: a new spec replaces the old one
      MERGED.clear();
      LOADED.put(spec, l);
    }
    return l;
  }

  /** The weights with the adapter merged in (for the KV-cache decoder). */
  static synchronized LlamaWeights merged(EvalModel spec) {
    EvalModel.Loaded l = get(spec);
    return MERGED.computeIfAbsent(spec, s -> l.merged());
  }

  /** How many times this JVM loaded a model (tests check "once per executor"). */
  static synchronized int loads() {
    return loads;
  }
}
