package dev.danlu.train.recipe;

import dev.danlu.train.checkpoint.SafeTensors;
import dev.danlu.train.comm.LocalCommunicator;
import dev.danlu.train.config.TrainConfig;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

/** Runs the recipe on N in-process ranks (threads joined by a LocalCommunicator group). */
final class Ranks {
  private Ranks() {}

  /** Runs to the end; returns rank 0's log. Rethrows the first rank failure. */
  static String run(int n, TrainConfig cfg) throws Exception {
    return run(n, cfg, null);
  }

  /** As {@link #run(int, TrainConfig)} with a progress listener on every rank. */
  static String run(int n, TrainConfig cfg, ProgressListener progress) throws Exception {
    return run(n, cfg, progress, TrainLoop.NO_HOOK);
  }

  /** As {@link #run(int, TrainConfig, ProgressListener)} with a test hook on every rank. */
  static String run(int n, TrainConfig cfg, ProgressListener progress, TrainLoop.StepHook hook)
      throws Exception {
    List<LocalCommunicator> group = LocalCommunicator.group(n, 120_000);
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    PrintStream ps = new PrintStream(log, true, StandardCharsets.UTF_8);
    AtomicReference<Exception> failure = new AtomicReference<>();
    List<Thread> threads = new ArrayList<>();
    for (int r = 0; r < n; r++) {
      int rank = r;
      Thread t =
          new Thread(
              () -> {
                try {
                  // the recipe the config's stage names, as workers and Spark tasks pick it
                  Recipe recipe = Recipes.forConfig(cfg);
                  if (recipe instanceof PretrainRecipe p) {
                    p.withStepHook(hook);
                  }
                  recipe.run(new TrainContext(rank, n, group.get(rank), cfg, progress), ps);
                } catch (Exception e) {
                  failure.compareAndSet(null, e);
                  group.forEach(LocalCommunicator::close);
                }
              },
              "rank-" + r);
      threads.add(t);
      t.start();
    }
    for (Thread t : threads) {
      t.join();
    }
    if (failure.get() != null) {
      throw failure.get();
    }
    return log.toString(StandardCharsets.UTF_8);
  }

  /** Every tensor of an adapter_model.safetensors (or any safetensors file). */
  static Map<String, float[]> tensors(Path file) {
    Map<String, float[]> out = new LinkedHashMap<>();
    try (SafeTensors st = SafeTensors.open(file)) {
      for (String n : st.names()) {
        out.put(n, st.readFloats(n));
      }
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    return out;
  }

  /** max over tensors of ||a - b|| / ||b||. */
  static double relError(Map<String, float[]> a, Map<String, float[]> b) {
    if (!a.keySet().equals(b.keySet())) {
      throw new AssertionError("different tensors: " + a.keySet() + " vs " + b.keySet());
    }
    double worst = 0;
    for (String k : b.keySet()) {
      float[] x = a.get(k);
      float[] y = b.get(k);
      double d = 0;
      double n = 0;
      for (int i = 0; i < y.length; i++) {
        d += (double) (x[i] - y[i]) * (x[i] - y[i]);
        n += (double) y[i] * y[i];
      }
      worst = Math.max(worst, Math.sqrt(d) / Math.max(Math.sqrt(n), 1e-30));
    }
    return worst;
  }
}
