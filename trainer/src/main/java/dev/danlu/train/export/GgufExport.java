package dev.danlu.train.export;

import dev.danlu.train.checkpoint.MergedView;
import dev.danlu.train.model.LlamaConfig;
import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.IntStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Hugging Face LLaMA directory (optionally with a PEFT adapter merged on the fly) → GGUF for
 * llama.cpp, streaming: tensors are read, merged, re-ordered (q/k rows), quantized and written one
 * block of rows at a time, so the heap holds one block (16 MB of float32) plus one LoRA pair
 * whatever the model size. Metadata, tensor names and q/k row order are those of {@code
 * convert_hf_to_gguf.py} (LlamaModel); the quantized types are {@code llama-quantize}'s mixtures
 * ({@link QuantMix}) with ggml's reference quantizers ({@link Quantize}). With a shard size the
 * output is split like {@code gguf-split} ({@code <name>-00001-of-0000N.gguf}, metadata in the
 * first file), which llama.cpp loads from the first file's path.
 */
public final class GgufExport {
  private static final Logger LOG = LoggerFactory.getLogger(GgufExport.class);
  // float32 elements per block; tests shrink it to cross block boundaries
  static int blockElems = 4 << 20;

  /** What to export; {@code adapter} may be null; {@code shardBytes} 0 means one file. */
  public record Options(
      Path model, Path adapter, Path output, ExportType type, long shardBytes, boolean overwrite) {}

  /** One planned tensor. */
  record Planned(String hf, Gguf.TensorSpec spec, int permuteHeads, String fallback) {}

  /** What was written. */
  public record Result(
      List<Path> files,
      long bytes,
      int tensors,
      int loraMerged,
      long vocab,
      Map<GgmlType, Integer> typeCounts,
      List<String> fallbacks) {}

  private GgufExport() {}

  public static Result run(Options o) throws IOException {
    Path out = o.output();
    if (!out.getFileName().toString().endsWith(".gguf")) {
      throw new IOException("--output " + out + " must end in .gguf");
    }
    try (MergedView view = MergedView.open(o.model(), o.adapter())) {
      LlamaConfig cfg = LlamaConfig.load(o.model());
      if (!view.contains("model.embed_tokens.weight")) {
        throw new IOException(o.model() + ": no model.embed_tokens.weight");
      }
      long vocab = view.shape("model.embed_tokens.weight")[0];
      cfg = cfg.withVocabSize(Math.toIntExact(vocab));
      List<Planned> plan = plan(view, cfg, o.type());
      Map<String, Gguf.Value> kv = metadata(o, cfg, vocab);
      List<List<Planned>> shards = shard(plan, o.shardBytes());
      List<Path> files = new ArrayList<>();
      for (int s = 0; s < shards.size(); s++) {
        files.add(shards.size() == 1 ? out : splitPath(out, s, shards.size()));
      }
      for (Path f : files) {
        if (Files.exists(f) && !o.overwrite()) {
          throw new IOException(f + " already exists; choose another --output or pass --overwrite");
        }
      }
      long total = 0;
      for (int s = 0; s < shards.size(); s++) {
        Map<String, Gguf.Value> fileKv = new LinkedHashMap<>(s == 0 ? kv : Map.of());
        if (shards.size() > 1) {
          fileKv.put("split.no", Gguf.Value.u16(s));
          fileKv.put("split.count", Gguf.Value.u16(shards.size()));
          fileKv.put("split.tensors.count", Gguf.Value.i32(plan.size()));
        }
        total += writeFile(files.get(s), fileKv, shards.get(s), view, cfg);
      }
      Map<GgmlType, Integer> counts = new TreeMap<>();
      List<String> fallbacks = new ArrayList<>();
      for (Planned p : plan) {
        counts.merge(p.spec().type(), 1, Integer::sum);
        if (p.fallback() != null) {
          fallbacks.add(p.spec().name() + ": " + p.fallback());
        }
      }
      return new Result(files, total, plan.size(), view.loraMerged(), vocab, counts, fallbacks);
    }
  }

  /** The tensors in output order with their GGUF names, dims and types. */
  static List<Planned> plan(MergedView view, LlamaConfig cfg, ExportType type) {
    List<String[]> mapped = new ArrayList<>();
    Map<String, LlamaTensorNames.Mapped> byHf = new LinkedHashMap<>();
    for (String hf : view.names()) {
      LlamaTensorNames.Mapped m = LlamaTensorNames.map(hf, cfg.numHeads(), cfg.numKvHeads());
      if (m != null) {
        byHf.put(hf, m);
        mapped.add(new String[] {hf, m.gguf()});
      }
    }
    boolean tied = byHf.values().stream().noneMatch(m -> m.gguf().equals("output.weight"));
    // convert_hf_to_gguf order: embeddings, blocks in order, final norm, output
    mapped.sort((a, b) -> Long.compare(orderKey(byHf.get(a[0])), orderKey(byHf.get(b[0]))));
    List<Planned> plan = new ArrayList<>();
    for (String[] e : mapped) {
      LlamaTensorNames.Mapped m = byHf.get(e[0]);
      long[] shape = view.shape(e[0]);
      long[] ne = new long[shape.length];
      for (int i = 0; i < shape.length; i++) {
        ne[i] = shape[shape.length - 1 - i];
      }
      if (m.permuteHeads() > 0
          && (shape.length != 2
              || shape[0] % m.permuteHeads() != 0
              || (shape[0] / m.permuteHeads()) % 2 != 0)) {
        throw new IllegalArgumentException(
            "tensor '"
                + e[0]
                + "' of shape "
                + java.util.Arrays.toString(shape)
                + " cannot be split into "
                + m.permuteHeads()
                + " heads of an even size");
      }
      QuantMix.Choice c = QuantMix.choose(type, m.gguf(), ne, m.layer(), cfg.numLayers(), tied);
      plan.add(
          new Planned(
              e[0], new Gguf.TensorSpec(m.gguf(), ne, c.type()), m.permuteHeads(), c.fallback()));
    }
    return plan;
  }

  private static long orderKey(LlamaTensorNames.Mapped m) {
    String n = m.gguf();
    if (n.equals("token_embd.weight")) {
      return -1;
    }
    if (n.equals("output_norm.weight")) {
      return Long.MAX_VALUE - 1;
    }
    if (n.equals("output.weight")) {
      return Long.MAX_VALUE;
    }
    List<String> order =
        List.of(
            "attn_norm",
            "attn_q",
            "attn_k",
            "attn_v",
            "attn_output",
            "ffn_norm",
            "ffn_gate",
            "ffn_up",
            "ffn_down");
    String kind = n.substring(n.indexOf('.', 4) + 1, n.lastIndexOf('.'));
    return (long) m.layer() * 100 + order.indexOf(kind);
  }

  /** The general.*, llama.* and tokenizer.* keys of convert_hf_to_gguf.py's LlamaModel. */
  static Map<String, Gguf.Value> metadata(Options o, LlamaConfig cfg, long vocab)
      throws IOException {
    Map<String, Gguf.Value> kv = new LinkedHashMap<>();
    kv.put("general.architecture", Gguf.Value.str("llama"));
    kv.put("general.type", Gguf.Value.str("model"));
    kv.put(
        "general.name",
        Gguf.Value.str(
            o.model().toAbsolutePath().normalize().getFileName()
                + (o.adapter() == null
                    ? ""
                    : " + " + o.adapter().toAbsolutePath().normalize().getFileName())));
    kv.put("llama.block_count", Gguf.Value.u32(cfg.numLayers()));
    kv.put("llama.context_length", Gguf.Value.u32(cfg.maxPositionEmbeddings()));
    kv.put("llama.embedding_length", Gguf.Value.u32(cfg.hiddenSize()));
    kv.put("llama.feed_forward_length", Gguf.Value.u32(cfg.intermediateSize()));
    kv.put("llama.attention.head_count", Gguf.Value.u32(cfg.numHeads()));
    kv.put("llama.attention.head_count_kv", Gguf.Value.u32(cfg.numKvHeads()));
    kv.put("llama.rope.freq_base", Gguf.Value.f32((float) cfg.ropeTheta()));
    kv.put("llama.attention.layer_norm_rms_epsilon", Gguf.Value.f32((float) cfg.rmsNormEps()));
    kv.put("general.file_type", Gguf.Value.u32(o.type().ftype()));
    kv.put("llama.vocab_size", Gguf.Value.u32(vocab));
    kv.put("llama.rope.dimension_count", Gguf.Value.u32(cfg.headDim()));
    LlamaConfig.RopeScaling rs = cfg.ropeScaling();
    if (rs != null && rs.type() == LlamaConfig.RopeScaling.Type.LINEAR) {
      kv.put("llama.rope.scaling.type", Gguf.Value.str("linear"));
      kv.put("llama.rope.scaling.factor", Gguf.Value.f32((float) rs.factor()));
    } else if (rs != null) {
      // convert_hf_to_gguf.py drops it too: llama.cpp has no dynamic NTK scaling
      LOG.warn(
          "{}: rope_scaling type dynamic (NTK) has no llama.cpp equivalent and is not exported;"
              + " use llama.cpp's --rope-freq-base for long contexts",
          o.model());
    }
    if (o.type().quantized()) {
      kv.put("general.quantization_version", Gguf.Value.u32(2));
    }
    Path tokDir = tokenizerDir(o);
    Path spModel = tokDir.resolve("tokenizer.model");
    if (!Files.isRegularFile(spModel)) {
      throw new IOException(
          "no tokenizer.model in "
              + tokDir
              + (o.adapter() != null ? " or " + o.model() : "")
              + ": llama.cpp needs the SentencePiece vocabulary inside the GGUF file");
    }
    GgufVocab.addTo(kv, spModel, vocab, o.model(), tokDir);
    return kv;
  }

  /** Like merge: the adapter's tokenizer (it knows a resized vocabulary), else the base's. */
  static Path tokenizerDir(Options o) {
    if (o.adapter() != null && Files.isRegularFile(o.adapter().resolve("tokenizer.model"))) {
      return o.adapter();
    }
    return o.model();
  }

  private static List<List<Planned>> shard(List<Planned> plan, long limit) {
    List<List<Planned>> shards = new ArrayList<>();
    List<Planned> cur = new ArrayList<>();
    long size = 0;
    for (Planned p : plan) {
      long b = p.spec().bytes();
      if (limit > 0 && !cur.isEmpty() && size + b > limit) {
        shards.add(cur);
        cur = new ArrayList<>();
        size = 0;
      }
      cur.add(p);
      size += b;
    }
    shards.add(cur);
    return shards;
  }

  /** gguf-split's name: {@code model.gguf} → {@code model-00002-of-00003.gguf}. */
  static Path splitPath(Path out, int index, int count) {
    String n = out.getFileName().toString();
    String stem = n.substring(0, n.length() - ".gguf".length());
    return out.resolveSibling(String.format("%s-%05d-of-%05d.gguf", stem, index + 1, count));
  }

  private static long writeFile(
      Path file,
      Map<String, Gguf.Value> kv,
      List<Planned> tensors,
      MergedView view,
      LlamaConfig cfg)
      throws IOException {
    Path abs = file.toAbsolutePath();
    Files.createDirectories(abs.getParent());
    Path tmp = abs.resolveSibling("." + abs.getFileName() + ".partial");
    List<Gguf.TensorSpec> specs = tensors.stream().map(Planned::spec).toList();
    GgufWriter w = new GgufWriter(tmp, kv, specs);
    try {
      for (Planned p : tensors) {
        w.begin(p.spec().name());
        writeTensor(w, p, view, cfg.headDim());
      }
      w.close();
      try {
        Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
      }
      LOG.info("wrote {} ({} tensors, {} bytes)", file, tensors.size(), Files.size(abs));
      return Files.size(abs);
    } catch (IOException | RuntimeException e) {
      w.abort();
      Files.deleteIfExists(tmp);
      throw e;
    }
  }

  /** Streams one tensor: blocks of whole rows (whole heads for q/k), quantized in parallel. */
  private static void writeTensor(GgufWriter w, Planned p, MergedView view, int headDim)
      throws IOException {
    Gguf.TensorSpec s = p.spec();
    int cols = Math.toIntExact(s.rowLength());
    long rows = s.rows();
    int unit = p.permuteHeads() > 0 ? headDim : 1;
    int rowsPerBlock =
        Math.max(unit, (int) Math.min(rows, blockElems / Math.max(1, cols)) / unit * unit);
    float[] src = new float[Math.toIntExact(Math.min(rows, rowsPerBlock) * (long) cols)];
    float[] perm = p.permuteHeads() > 0 ? new float[src.length] : null;
    long rowBytes = s.type().rowBytes(cols);
    byte[] bytes = new byte[Math.toIntExact(Math.min(rows, rowsPerBlock) * rowBytes)];
    for (long r0 = 0; r0 < rows; r0 += rowsPerBlock) {
      int n = (int) Math.min(rowsPerBlock, rows - r0);
      view.readRows(p.hf(), r0, n, src);
      float[] x = src;
      if (perm != null) {
        LlamaTensorNames.permuteRows(src, perm, n, cols, headDim);
        x = perm;
      }
      float[] xs = x;
      GgmlType t = s.type();
      if (t != GgmlType.F32 && n > 1) {
        IntStream.range(0, n)
            .parallel()
            .forEach(r -> Quantize.quantize(t, xs, r * cols, cols, bytes, (int) (r * rowBytes)));
      } else {
        Quantize.quantize(t, xs, 0, n * cols, bytes, 0);
      }
      w.write(bytes, 0, (int) (n * rowBytes));
    }
  }
}
