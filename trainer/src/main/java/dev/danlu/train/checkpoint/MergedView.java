package dev.danlu.train.checkpoint;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A base model with a PEFT adapter merged in, read block of rows by block of rows, so an exporter
 * can write merged weights without a merged copy on disk first (the same rules as {@link Merge}:
 * {@code W += (B @ A) * alpha / r} for adapted Linears, embed_tokens and lm_head replaced by the
 * adapter's trained copies; a tied model's stored lm_head follows a trained embedding). Without an
 * adapter it is a plain view of the base checkpoint. The heap holds one LoRA pair at a time.
 */
public final class MergedView implements AutoCloseable {
  private enum Kind {
    COPY,
    LORA,
    ADAPTER
  }

  private record Source(Kind kind, long[] shape, String name) {}

  private final HfCheckpoint base;
  private final SafeTensors adapter;
  private final AdapterConfig cfg;
  private final Map<String, String> keys;
  private final Map<String, Source> sources;
  private final int loraCount;
  private String deltaFor;
  private LoraDelta delta;

  private MergedView(
      HfCheckpoint base,
      SafeTensors adapter,
      AdapterConfig cfg,
      Map<String, String> keys,
      Map<String, Source> sources) {
    this.base = base;
    this.adapter = adapter;
    this.cfg = cfg;
    this.keys = keys;
    this.sources = sources;
    this.loraCount = (int) sources.values().stream().filter(s -> s.kind == Kind.LORA).count();
  }

  /**
   * Opens {@code baseDir} and, unless {@code adapterDir} is null, the adapter, checking that every
   * adapter tensor fits a base weight (errors name the file and tensor).
   */
  public static MergedView open(Path baseDir, Path adapterDir) throws IOException {
    HfCheckpoint base = HfCheckpoint.open(baseDir);
    SafeTensors adapter = null;
    try {
      Map<String, Source> sources = new LinkedHashMap<>();
      if (adapterDir == null) {
        for (String n : base.names()) {
          sources.put(n, new Source(Kind.COPY, base.info(n).shape(), n));
        }
        return new MergedView(base, null, null, Map.of(), Collections.unmodifiableMap(sources));
      }
      if (!Files.isDirectory(adapterDir)) {
        throw new IOException(adapterDir + ": adapter directory not found");
      }
      adapterDir = AdaLoraFiles.loraView(adapterDir); // AdaLoRA: its folded LoRA form
      AdapterConfig cfg = PeftAdapter.readConfig(adapterDir.resolve(PeftAdapter.CONFIG));
      Path file = adapterDir.resolve(PeftAdapter.WEIGHTS);
      if (!Files.isRegularFile(file)) {
        PeftAdapter.load(adapterDir); // its message, with the pickle hint
      }
      adapter = SafeTensors.open(file);
      Map<String, String> keys = new LinkedHashMap<>();
      for (String n : adapter.names()) {
        String k = PeftAdapter.canonicalKey(n);
        if (k != null && (keys.putIfAbsent(k, n) != null && n.equals(k))) {
          keys.put(k, n);
        }
      }
      boolean tied = LlamaTie.tied(baseDir);
      boolean headFollowsEmbed =
          tied
              && keys.containsKey(PeftAdapter.EMBED_KEY)
              && !keys.containsKey(PeftAdapter.LM_HEAD_KEY);
      Set<String> used = new HashSet<>();
      for (String name : base.names()) {
        long[] w = base.info(name).shape();
        String saved = PeftAdapter.PREFIX + name;
        if (headFollowsEmbed && name.equals("lm_head.weight")) {
          saved = PeftAdapter.EMBED_KEY;
        }
        String module = name.endsWith(".weight") ? name.substring(0, name.length() - 7) : null;
        if (keys.containsKey(saved)) {
          long[] as = adapter.info(keys.get(saved)).shape();
          if (as.length != 2 || w.length != 2 || as[1] != w[1]) {
            throw new IOException(
                file
                    + ": '"
                    + keys.get(saved)
                    + "' has shape "
                    + Arrays.toString(as)
                    + " but the base "
                    + name
                    + " is "
                    + Arrays.toString(w)
                    + "; the hidden size must match");
          }
          sources.put(name, new Source(Kind.ADAPTER, as, keys.get(saved)));
          used.add(saved);
        } else if (module != null && keys.containsKey(PeftAdapter.loraKey(module, 'A'))) {
          String ka = PeftAdapter.loraKey(module, 'A');
          String kb = PeftAdapter.loraKey(module, 'B');
          long[] a = adapter.info(keys.get(ka)).shape();
          long[] b = keys.containsKey(kb) ? adapter.info(keys.get(kb)).shape() : null;
          if (b == null
              || w.length != 2
              || a.length != 2
              || b.length != 2
              || a[0] != cfg.r()
              || b[1] != cfg.r()
              || a[1] != w[1]
              || b[0] != w[0]) {
            throw new IOException(
                adapterDir
                    + ": LoRA pair for "
                    + module
                    + " (A "
                    + Arrays.toString(a)
                    + ", B "
                    + (b == null ? "missing" : Arrays.toString(b))
                    + ", r "
                    + cfg.r()
                    + ") does not fit the base weight "
                    + Arrays.toString(w)
                    + " (want A [r, in], B [out, r])");
          }
          sources.put(name, new Source(Kind.LORA, w, module));
          used.add(ka);
          used.add(kb);
        } else {
          sources.put(name, new Source(Kind.COPY, w, name));
        }
      }
      String head = PeftAdapter.LM_HEAD_KEY;
      if (keys.containsKey(head) && !used.contains(head)) {
        sources.put(
            "lm_head.weight",
            new Source(Kind.ADAPTER, adapter.info(keys.get(head)).shape(), keys.get(head)));
        used.add(head);
      }
      for (String k : keys.keySet()) {
        if (!used.contains(k)) {
          throw new IOException(
              adapterDir
                  + ": adapter tensor '"
                  + keys.get(k)
                  + "' matches no weight of the base"
                  + " model in "
                  + baseDir
                  + " (wrong base model?)");
        }
      }
      Source e = sources.get("model.embed_tokens.weight");
      Source h = sources.get("lm_head.weight");
      if (e != null && h != null && e.shape()[0] != h.shape()[0]) {
        throw new IOException(
            adapterDir
                + ": embed_tokens and lm_head would have "
                + e.shape()[0]
                + " and "
                + h.shape()[0]
                + " rows: the adapter resizes only one of them");
      }
      return new MergedView(
          base,
          adapter,
          cfg,
          Collections.unmodifiableMap(keys),
          Collections.unmodifiableMap(sources));
    } catch (IOException | RuntimeException ex) {
      base.close();
      if (adapter != null) {
        adapter.close();
      }
      throw ex;
    }
  }

  /** Tensor names of the merged model (base order; an added lm_head last). */
  public List<String> names() {
    return List.copyOf(sources.keySet());
  }

  public boolean contains(String name) {
    return sources.containsKey(name);
  }

  /** The merged tensor's shape (PyTorch layout). */
  public long[] shape(String name) {
    return source(name).shape().clone();
  }

  /** How many weights get a LoRA delta. */
  public int loraMerged() {
    return loraCount;
  }

  private Source source(String name) {
    Source s = sources.get(name);
    if (s == null) {
      throw new IllegalArgumentException(base.dir() + ": no tensor '" + name + "'");
    }
    return s;
  }

  /**
   * Reads rows {@code [row0, row0 + rows)} of a merged tensor as float32 into {@code dst} (a 1-D
   * tensor is one row). Call tensor by tensor: the LoRA pair of the last tensor is cached.
   */
  public void readRows(String name, long row0, int rows, float[] dst) {
    Source s = source(name);
    long[] sh = s.shape();
    long cols = sh.length >= 2 ? TensorInfo.numel(sh) / sh[0] : TensorInfo.numel(sh);
    int n = Math.toIntExact(rows * cols);
    switch (s.kind()) {
      case COPY -> base.shardOf(name).readFloats(name, row0 * cols, dst, 0, n);
      case ADAPTER -> adapter.readFloats(s.name(), row0 * cols, dst, 0, n);
      case LORA -> {
        base.shardOf(name).readFloats(name, row0 * cols, dst, 0, n);
        if (!name.equals(deltaFor)) {
          closeDelta();
          float[] a = adapter.readFloats(keys.get(PeftAdapter.loraKey(s.name(), 'A')));
          float[] b = adapter.readFloats(keys.get(PeftAdapter.loraKey(s.name(), 'B')));
          delta = new LoraDelta(a, b, cfg.r(), (int) cols, (float) cfg.scaling());
          deltaFor = name;
        }
        delta.addTo(dst, Math.toIntExact(row0), rows);
      }
      default -> throw new AssertionError(s.kind());
    }
  }

  private void closeDelta() {
    if (delta != null) {
      delta.close();
      delta = null;
      deltaFor = null;
    }
  }

  @Override
  public void close() {
    closeDelta();
    base.close();
    if (adapter != null) {
      adapter.close();
    }
  }

  /** Reads tie_word_embeddings from a model directory's config.json. */
  private static final class LlamaTie {
    static boolean tied(Path dir) throws IOException {
      Path p = dir.resolve("config.json");
      if (!Files.isRegularFile(p)) {
        throw new IOException(dir + ": missing config.json (not a Hugging Face model directory?)");
      }
      return new com.fasterxml.jackson.databind.ObjectMapper()
          .readTree(p.toFile())
          .path("tie_word_embeddings")
          .asBoolean(false);
    }
  }
}
