package dev.danlu.train.export;

import dev.danlu.train.checkpoint.AdapterConfig;
import dev.danlu.train.checkpoint.PeftAdapter;
import dev.danlu.train.model.LlamaConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A PEFT LoRA adapter alone as a llama.cpp LoRA GGUF, as {@code convert_lora_to_gguf.py} writes it
 * (applied at load time: {@code llama-cli -m base.gguf --lora adapter.gguf}): general.type
 * "adapter", adapter.type "lora", adapter.lora.alpha; per adapted weight {@code <gguf name>.lora_a}
 * (ne [in, r], PEFT's A) and {@code .lora_b} (ne [r, out], PEFT's B), B's rows in llama.cpp's q/k
 * order. llama.cpp scales by alpha / r as PEFT does. An adapter with trained embed_tokens/lm_head
 * (modules_to_save, a resized vocabulary) cannot be applied this way, as in the reference
 * converter: export the merged model instead.
 */
public final class LoraGguf {
  private LoraGguf() {}

  /** Writes {@code out}; returns its size. {@code type} is F32 or F16. */
  public static long write(Path model, Path adapterDir, Path out, GgmlType type, boolean overwrite)
      throws IOException {
    if (type != GgmlType.F32 && type != GgmlType.F16) {
      throw new IOException("--type for --lora-gguf must be f32 or f16, not " + type.ggmlName());
    }
    if (Files.exists(out) && !overwrite) {
      throw new IOException(out + " already exists; choose another file or pass --overwrite");
    }
    LlamaConfig cfg = LlamaConfig.load(model);
    PeftAdapter adapter = PeftAdapter.load(adapterDir);
    AdapterConfig ac = adapter.config();
    if (adapter.embedTokens().isPresent() || adapter.lmHead().isPresent()) {
      throw new IOException(
          adapterDir
              + ": the adapter trains embed_tokens/lm_head in full (modules_to_save), which"
              + " a llama.cpp LoRA cannot carry; export the merged model instead: danlu export-gguf"
              + " --model "
              + model
              + " --adapter "
              + adapterDir
              + " --output <file.gguf>");
    }
    List<String> modules = adapter.loraModules();
    if (modules.isEmpty()) {
      throw new IOException(adapterDir + ": no LoRA weights (lora_A/lora_B) in the adapter");
    }
    Map<String, Gguf.Value> kv = new LinkedHashMap<>();
    kv.put("general.architecture", Gguf.Value.str("llama"));
    kv.put("general.type", Gguf.Value.str("adapter"));
    kv.put(
        "general.name",
        Gguf.Value.str(adapterDir.toAbsolutePath().normalize().getFileName().toString()));
    kv.put("adapter.type", Gguf.Value.str("lora"));
    kv.put("adapter.lora.alpha", Gguf.Value.f32(ac.loraAlpha()));
    List<Gguf.TensorSpec> specs = new ArrayList<>();
    List<float[]> data = new ArrayList<>();
    for (String module : modules) {
      LlamaTensorNames.Mapped m =
          LlamaTensorNames.map(module + ".weight", cfg.numHeads(), cfg.numKvHeads());
      if (m == null) {
        continue;
      }
      var a = adapter.loraA(module); // [r, in]
      var b = adapter.loraB(module); // [out, r]
      float[] bData = b.data();
      if (m.permuteHeads() > 0) {
        bData = new float[bData.length];
        LlamaTensorNames.permuteRows(
            b.data(), bData, b.dim(0), b.dim(1), b.dim(0) / m.permuteHeads());
      }
      specs.add(new Gguf.TensorSpec(m.gguf() + ".lora_a", new long[] {a.dim(1), a.dim(0)}, type));
      data.add(a.data());
      specs.add(new Gguf.TensorSpec(m.gguf() + ".lora_b", new long[] {b.dim(1), b.dim(0)}, type));
      data.add(bData);
    }
    Path abs = out.toAbsolutePath();
    Files.createDirectories(abs.getParent());
    Path tmp = abs.resolveSibling("." + abs.getFileName() + ".partial");
    GgufWriter w = new GgufWriter(tmp, kv, specs);
    try {
      for (int i = 0; i < specs.size(); i++) {
        w.begin(specs.get(i).name());
        float[] x = data.get(i);
        byte[] bytes = new byte[(int) specs.get(i).bytes()];
        Quantize.quantize(type, x, 0, x.length, bytes, 0);
        w.write(bytes, 0, bytes.length);
      }
      w.close();
      Files.move(tmp, abs, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException | RuntimeException e) {
      w.abort();
      Files.deleteIfExists(tmp);
      throw e;
    }
    return Files.size(abs);
  }
}
