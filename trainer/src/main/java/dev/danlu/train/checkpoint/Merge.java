package dev.danlu.train.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Merges a PEFT LoRA adapter into its base model and writes a Hugging Face model directory: {@code
 * W += (B @ A) * lora_alpha / r} for every adapted Linear, embed_tokens and lm_head replaced by the
 * adapter's trained copies (whose row count is the new vocabulary size), config.json with the new
 * {@code vocab_size} (and the rotary settings the adapter was trained under, {@link TrainedRope}),
 * sharded safetensors + index, tokenizer files.
 *
 * <p>Streaming: weights are read from the memory-mapped inputs and written in blocks of rows, so
 * the heap holds one block plus one LoRA pair at a time, whatever the model size (a 7B merge runs
 * in a few hundred MB of heap; see {@link MergeCli} for the measurement).
 */
public final class Merge {
  private static final Logger LOG = LoggerFactory.getLogger(Merge.class);
  // 16 MB of float32 per block; tests shrink it to exercise block boundaries.
  static int blockElems = 4 << 20;
  static final List<String> TOKENIZER_FILES =
      List.of(
          "tokenizer.model",
          "tokenizer.json",
          "tokenizer_config.json",
          "special_tokens_map.json",
          "added_tokens.json");
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  /**
   * What to merge. {@code dtype} null keeps each tensor's base dtype; {@code shardBytes} caps a
   * shard's data size (one tensor larger than that gets a shard of its own).
   */
  public record Options(
      Path base, Path adapter, Path output, DType dtype, long shardBytes, boolean overwrite) {}

  /** What was written. */
  public record Result(
      int tensors, int loraMerged, List<Path> shards, long totalBytes, long vocabSize) {}

  private enum Kind {
    COPY,
    LORA,
    ADAPTER
  }

  /** One output tensor and where its values come from. */
  private record Out(String name, DType dtype, long[] shape, Kind kind, String source) {
    long bytes() {
      return TensorInfo.numel(shape) * dtype.bytes();
    }
  }

  private Merge() {}

  /** Runs the merge; see the class comment. */
  public static Result run(Options options) throws IOException {
    checkDirs(options);
    // AdaLoRA: the masked SVD form B (A ⊙ E) alpha / ranknum folded into LoRA tensors first
    Options o =
        AdaLoraFiles.isAdaLora(options.adapter())
            ? new Options(
                options.base(),
                AdaLoraFiles.loraView(options.adapter()),
                options.output(),
                options.dtype(),
                options.shardBytes(),
                options.overwrite())
            : options;
    AdapterConfig cfg = PeftAdapter.readConfig(o.adapter().resolve(PeftAdapter.CONFIG));
    Path adapterFile = o.adapter().resolve(PeftAdapter.WEIGHTS);
    if (!Files.isRegularFile(adapterFile)) {
      // Same message as PeftAdapter.load, including the pickle hint.
      PeftAdapter.load(o.adapter());
    }
    ObjectNode config = readConfig(o.base());
    java.util.Optional<TrainedRope.Settings> rope = TrainedRope.read(o.adapter());
    try (HfCheckpoint base = HfCheckpoint.open(o.base());
        SafeTensors adapter = SafeTensors.open(adapterFile)) {
      Map<String, String> adapterKeys = canonicalKeys(adapter);
      List<Out> plan = plan(o, cfg, config, base, adapter, adapterKeys);
      long vocab =
          plan.stream()
              .filter(t -> t.name().equals("model.embed_tokens.weight"))
              .findFirst()
              .orElseThrow(() -> new IOException(o.base() + ": no model.embed_tokens.weight"))
              .shape()[0];
      boolean untie = adapterKeys.containsKey(PeftAdapter.LM_HEAD_KEY);
      prepareOutput(o);
      List<List<Out>> shards = shard(plan, o.shardBytes());
      List<Path> files = new ArrayList<>();
      Map<String, String> weightMap = new TreeMap<>();
      long total = 0;
      for (int s = 0; s < shards.size(); s++) {
        String fileName =
            shards.size() == 1
                ? HfCheckpoint.SINGLE
                : String.format("model-%05d-of-%05d.safetensors", s + 1, shards.size());
        Path file = o.output().resolve(fileName);
        writeShard(file, shards.get(s), base, adapter, adapterKeys, cfg);
        files.add(file);
        for (Out t : shards.get(s)) {
          weightMap.put(t.name(), fileName);
          total += t.bytes();
        }
      }
      if (shards.size() > 1) {
        ObjectNode index = JSON.createObjectNode();
        index.putObject("metadata").put("total_size", total);
        ObjectNode wm = index.putObject("weight_map");
        weightMap.forEach(wm::put);
        writeJson(o.output().resolve(HfCheckpoint.INDEX), index);
      }
      config.put("vocab_size", vocab);
      if (untie && config.path("tie_word_embeddings").asBoolean(false)) {
        config.put("tie_word_embeddings", false);
      }
      if (o.dtype() != null) {
        config.put("torch_dtype", torchName(o.dtype()));
      }
      if (rope.isPresent()) { // trained with position interpolation: the model now needs it
        TrainedRope.apply(rope.get(), config);
        LOG.info("rope_scaling {} from {}", rope.get(), o.adapter().resolve(TrainedRope.FILE));
      }
      writeJson(o.output().resolve("config.json"), config);
      copyTokenizer(o);
      int lora = (int) plan.stream().filter(t -> t.kind() == Kind.LORA).count();
      LOG.info(
          "merged {} LoRA weights, {} tensors, {} shard(s), {} bytes, vocab {} -> {}",
          lora,
          plan.size(),
          files.size(),
          total,
          base.info("model.embed_tokens.weight").shape()[0],
          vocab);
      return new Result(plan.size(), lora, files, total, vocab);
    }
  }

  private static void checkDirs(Options o) throws IOException {
    Path out = o.output().toAbsolutePath().normalize();
    for (Path in : List.of(o.base(), o.adapter())) {
      if (in.toAbsolutePath().normalize().equals(out)) {
        throw new IOException("--output " + o.output() + " must differ from the input " + in);
      }
    }
    if (!Files.isDirectory(o.adapter())) {
      throw new IOException(o.adapter() + ": adapter directory not found");
    }
  }

  private static ObjectNode readConfig(Path base) throws IOException {
    Path p = base.resolve("config.json");
    if (!Files.isRegularFile(p)) {
      throw new IOException(base + ": missing config.json (not a Hugging Face model directory?)");
    }
    JsonNode n = JSON.readTree(p.toFile());
    if (!(n instanceof ObjectNode obj)) {
      throw new IOException(p + ": must be a JSON object");
    }
    return obj;
  }

  /** Canonical PEFT key → stored key, dropping PEFT's frozen base copies. */
  private static Map<String, String> canonicalKeys(SafeTensors adapter) throws IOException {
    Map<String, String> m = new LinkedHashMap<>();
    for (String n : adapter.names()) {
      String k = PeftAdapter.canonicalKey(n);
      if (k != null && m.putIfAbsent(k, n) != null && n.equals(k)) {
        m.put(k, n); // prefer the canonical spelling when both are present
      }
    }
    return m;
  }

  private static List<Out> plan(
      Options o,
      AdapterConfig cfg,
      ObjectNode config,
      HfCheckpoint base,
      SafeTensors adapter,
      Map<String, String> keys)
      throws IOException {
    Set<String> used = new HashSet<>();
    List<Out> plan = new ArrayList<>();
    // A tied model whose file also stores lm_head.weight (stories260K does) gets the trained
    // embedding there too, so the file stays consistent with the tie and with the new vocab.
    boolean tied = config.path("tie_word_embeddings").asBoolean(false);
    boolean headFollowsEmbed =
        tied
            && keys.containsKey(PeftAdapter.EMBED_KEY)
            && !keys.containsKey(PeftAdapter.LM_HEAD_KEY);
    for (String name : base.names()) {
      TensorInfo bi = base.info(name);
      DType dt = o.dtype() != null && bi.dtype().isFloat() ? o.dtype() : bi.dtype();
      String saved = PeftAdapter.PREFIX + name;
      if (headFollowsEmbed && name.equals("lm_head.weight")) {
        saved = PeftAdapter.EMBED_KEY;
      }
      String module = name.endsWith(".weight") ? name.substring(0, name.length() - 7) : null;
      if (keys.containsKey(saved)) {
        TensorInfo ai = adapter.info(keys.get(saved));
        long[] as = ai.shape();
        if (as.length != 2 || as[1] != bi.shape()[1]) {
          throw new IOException(
              adapter.file()
                  + ": '"
                  + ai.name()
                  + "' has shape "
                  + java.util.Arrays.toString(as)
                  + " but the base "
                  + name
                  + " is "
                  + java.util.Arrays.toString(bi.shape())
                  + "; the hidden size must match");
        }
        plan.add(new Out(name, dt, as, Kind.ADAPTER, keys.get(saved)));
        used.add(saved);
      } else if (module != null && keys.containsKey(PeftAdapter.loraKey(module, 'A'))) {
        String ka = PeftAdapter.loraKey(module, 'A');
        String kb = PeftAdapter.loraKey(module, 'B');
        long[] a = adapter.info(keys.get(ka)).shape();
        long[] b = adapter.info(keys.getOrDefault(kb, keys.get(ka))).shape();
        long[] w = bi.shape();
        if (!keys.containsKey(kb)
            || w.length != 2
            || a.length != 2
            || b.length != 2
            || a[0] != cfg.r()
            || b[1] != cfg.r()
            || a[1] != w[1]
            || b[0] != w[0]) {
          throw new IOException(
              o.adapter()
                  + ": LoRA pair for "
                  + module
                  + " (A "
                  + java.util.Arrays.toString(a)
                  + ", B "
                  + (keys.containsKey(kb) ? java.util.Arrays.toString(b) : "missing")
                  + ", r "
                  + cfg.r()
                  + ") does not fit the base weight "
                  + java.util.Arrays.toString(w)
                  + " (want A [r, in], B [out, r])");
        }
        plan.add(new Out(name, dt, w, Kind.LORA, module));
        used.add(ka);
        used.add(kb);
      } else {
        plan.add(new Out(name, dt, bi.shape(), Kind.COPY, name));
      }
    }
    // A tied base model's file may lack lm_head.weight; a trained lm_head makes it untied.
    String head = PeftAdapter.LM_HEAD_KEY;
    if (keys.containsKey(head) && !used.contains(head)) {
      TensorInfo embed = base.info("model.embed_tokens.weight");
      DType dt = o.dtype() != null ? o.dtype() : embed.dtype();
      plan.add(
          new Out(
              "lm_head.weight",
              dt,
              adapter.info(keys.get(head)).shape(),
              Kind.ADAPTER,
              keys.get(head)));
      used.add(head);
    }
    for (String k : keys.keySet()) {
      if (!used.contains(k)) {
        throw new IOException(
            o.adapter()
                + ": adapter tensor '"
                + keys.get(k)
                + "' matches no weight of the base "
                + "model in "
                + o.base()
                + " (wrong base model?)");
      }
    }
    long vocab = -1;
    for (Out t : plan) {
      if (t.name().equals("model.embed_tokens.weight") || t.name().equals("lm_head.weight")) {
        if (vocab >= 0 && t.shape()[0] != vocab) {
          throw new IOException(
              "embed_tokens and lm_head would have "
                  + vocab
                  + " and "
                  + t.shape()[0]
                  + " rows: the adapter resizes only one of them; save both (modules_to_save)");
        }
        vocab = t.shape()[0];
      }
    }
    return plan;
  }

  private static void prepareOutput(Options o) throws IOException {
    Path out = o.output();
    Files.createDirectories(out);
    List<Path> old;
    try (Stream<Path> s = Files.list(out)) {
      old =
          s.filter(
                  p -> {
                    String n = p.getFileName().toString();
                    return (n.startsWith("model") && n.endsWith(".safetensors"))
                        || n.equals(HfCheckpoint.INDEX);
                  })
              .toList();
    }
    if (!old.isEmpty()) {
      if (!o.overwrite()) {
        throw new IOException(
            out
                + " already holds model weights "
                + old.stream().map(Path::getFileName).toList()
                + "; choose an empty directory or pass --overwrite");
      }
      for (Path p : old) {
        Files.delete(p);
      }
    }
  }

  /** Greedy shard packing in plan order, like Hugging Face's shard_checkpoint. */
  private static List<List<Out>> shard(List<Out> plan, long limit) {
    List<List<Out>> shards = new ArrayList<>();
    List<Out> cur = new ArrayList<>();
    long size = 0;
    for (Out t : plan) {
      if (!cur.isEmpty() && size + t.bytes() > limit) {
        shards.add(cur);
        cur = new ArrayList<>();
        size = 0;
      }
      cur.add(t);
      size += t.bytes();
    }
    if (!cur.isEmpty() || shards.isEmpty()) {
      shards.add(cur);
    }
    return shards;
  }

  private static void writeShard(
      Path file,
      List<Out> tensors,
      HfCheckpoint base,
      SafeTensors adapter,
      Map<String, String> keys,
      AdapterConfig cfg)
      throws IOException {
    SafeTensorsWriter.Builder b = SafeTensorsWriter.builder(file).optMetadata("format", "pt");
    for (Out t : tensors) {
      b.declare(t.name(), t.dtype(), t.shape());
    }
    try (SafeTensorsWriter w = b.open()) {
      for (Out t : tensors) {
        String srcName = t.kind() == Kind.LORA ? t.name() : t.source();
        SafeTensors src = t.kind() == Kind.ADAPTER ? adapter : base.shardOf(srcName);
        if (t.kind() == Kind.LORA) {
          String ka = keys.get(PeftAdapter.loraKey(t.source(), 'A'));
          String kb = keys.get(PeftAdapter.loraKey(t.source(), 'B'));
          streamRows(w, src, srcName, t, adapter.readFloats(ka), adapter.readFloats(kb), cfg);
        } else if (src.info(srcName).dtype() == t.dtype()) {
          copyRaw(w, src, srcName);
        } else {
          streamRows(w, src, srcName, t, null, null, cfg);
        }
      }
    } catch (IOException | RuntimeException e) {
      throw new IOException(file + ": merge failed: " + e.getMessage(), e);
    }
  }

  private static void copyRaw(SafeTensorsWriter w, SafeTensors src, String name)
      throws IOException {
    long size = src.info(name).byteSize();
    ByteBuffer buf =
        ByteBuffer.allocate((int) Math.min(size, 8 << 20)).order(ByteOrder.LITTLE_ENDIAN);
    for (long off = 0; off < size; off += buf.capacity()) {
      buf.clear().limit((int) Math.min(buf.capacity(), size - off));
      src.readBytes(name, off, buf);
      buf.flip();
      w.writeBytes(buf);
    }
  }

  /** Reads rows in blocks, adds the LoRA delta when {@code a} is given, writes converted. */
  private static void streamRows(
      SafeTensorsWriter w,
      SafeTensors src,
      String name,
      Out t,
      float[] a,
      float[] b,
      AdapterConfig cfg)
      throws IOException {
    long numel = TensorInfo.numel(t.shape());
    if (numel == 0) {
      return;
    }
    int cols = t.shape().length >= 2 ? Math.toIntExact(numel / t.shape()[0]) : (int) numel;
    long rows = numel / cols;
    int rowsPerBlock = (int) Math.max(1, Math.min(rows, blockElems / Math.max(1, cols)));
    float[] block = new float[(int) Math.min(numel, (long) rowsPerBlock * cols)];
    try (LoraDelta delta =
        a == null ? null : new LoraDelta(a, b, cfg.r(), cols, (float) cfg.scaling())) {
      for (long r0 = 0; r0 < rows; r0 += rowsPerBlock) {
        int n = (int) Math.min(rowsPerBlock, rows - r0);
        src.readFloats(name, r0 * cols, block, 0, n * cols);
        if (delta != null) {
          delta.addTo(block, (int) r0, n);
        }
        w.writeFloats(block, 0, n * cols);
      }
    }
  }

  private static void writeJson(Path p, JsonNode n) throws IOException {
    AtomicFiles.writeJson(JSON, p, n);
  }

  /** Tokenizer files from the adapter (which knows the resized vocabulary), else from the base. */
  private static void copyTokenizer(Options o) throws IOException {
    boolean adapterHas =
        TOKENIZER_FILES.stream().anyMatch(f -> Files.isRegularFile(o.adapter().resolve(f)));
    Path from = adapterHas ? o.adapter() : o.base();
    for (String f : TOKENIZER_FILES) {
      Path src = from.resolve(f);
      if (Files.isRegularFile(src)) {
        Files.copy(src, o.output().resolve(f), StandardCopyOption.REPLACE_EXISTING);
      }
    }
    Path gen = o.base().resolve("generation_config.json");
    if (Files.isRegularFile(gen)) {
      Files.copy(gen, o.output().resolve(gen.getFileName()), StandardCopyOption.REPLACE_EXISTING);
    }
    LOG.info("tokenizer files copied from {}", from);
  }

  static String torchName(DType d) {
    return switch (d) {
      case F32 -> "float32";
      case F16 -> "float16";
      case BF16 -> "bfloat16";
      case F64 -> "float64";
      default -> throw new IllegalArgumentException("--dtype must be f32, f16 or bf16, not " + d);
    };
  }
}
