package dev.danlu.train.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** PEFT adapter directories: the PyTorch fixture, round trips, key variants, refusals. */
class PeftAdapterTest {
  @TempDir Path tmp;

  static Path fixture() {
    return ReferenceFixturesTest.dir().resolve("tiny-adapter");
  }

  @Test
  void loadsThePeftFixture() throws IOException {
    PeftAdapter a = PeftAdapter.load(fixture());
    AdapterConfig c = a.config();
    assertEquals(4, c.r());
    assertEquals(6, c.loraAlpha());
    assertEquals(1.5, c.scaling());
    assertEquals(List.of("embed_tokens", "lm_head"), c.modulesToSave());
    assertEquals(14, a.loraModules().size());
    assertEquals(ReferenceFixturesTest.loraModules().size(), a.loraModules().size());
    for (String m : ReferenceFixturesTest.loraModules()) {
      long[] s = ReferenceFixturesTest.shape(m.substring(m.lastIndexOf('.') + 1));
      assertArrayEquals(new long[] {4, s[1]}, a.loraA(m).shape());
      assertArrayEquals(new long[] {s[0], 4}, a.loraB(m).shape());
    }
    assertEquals(
        "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight",
        PeftAdapter.loraKey(PeftAdapter.llamaModule(1, "down_proj"), 'B'));
    assertArrayEquals(new long[] {147, 32}, a.embedTokens().orElseThrow().shape());
    assertArrayEquals(new long[] {147, 32}, a.lmHead().orElseThrow().shape());
  }

  @Test
  void saveThenLoadIsIdenticalAndNumpyReadsIt() throws Exception {
    PeftAdapter a = PeftAdapter.load(fixture());
    Path out = tmp.resolve("saved");
    a.save(out);
    PeftAdapter b = PeftAdapter.load(out);
    assertEquals(a.config(), b.config());
    assertEquals(a.tensors(), b.tensors());
    assertEquals(List.copyOf(a.tensors().keySet()), List.copyOf(b.tensors().keySet()));
    JsonNode cfg = new ObjectMapper().readTree(out.resolve(PeftAdapter.CONFIG).toFile());
    for (String k :
        List.of(
            "peft_type",
            "task_type",
            "r",
            "lora_alpha",
            "lora_dropout",
            "target_modules",
            "modules_to_save",
            "bias",
            "fan_in_fan_out",
            "inference_mode",
            "base_model_name_or_path")) {
      assertTrue(cfg.has(k), "adapter_config.json has " + k);
    }
    assertEquals("LORA", cfg.get("peft_type").asText());
    assertEquals(6, cfg.get("lora_alpha").asInt());
    PythonReader.assumeAvailable();
    Path w = out.resolve(PeftAdapter.WEIGHTS);
    JsonNode ts = PythonReader.summary(w).get(w.toString()).get("tensors");
    assertEquals(a.tensors().size(), ts.size());
    for (var e : a.tensors().entrySet()) {
      JsonNode t = ts.get(e.getKey());
      assertEquals(PythonReader.sumsq(e.getValue().data()), t.get("sumsq").asDouble(), 1e-9);
    }
  }

  @Test
  void acceptsKeysWithAdapterNamesAndDropsFrozenCopies() throws IOException {
    PeftAdapter a = PeftAdapter.load(fixture());
    Map<String, FloatTensor> variant = new LinkedHashMap<>();
    for (var e : a.tensors().entrySet()) {
      String k = e.getKey();
      if (k.equals(PeftAdapter.EMBED_KEY)) {
        variant.put(
            "base_model.model.model.embed_tokens.modules_to_save.default.weight", e.getValue());
        variant.put(
            "base_model.model.model.embed_tokens.original_module.weight",
            FloatTensor.of(new float[131 * 32], 131, 32));
      } else if (k.equals(PeftAdapter.LM_HEAD_KEY)) {
        variant.put("base_model.model.lm_head.modules_to_save.weight", e.getValue());
      } else {
        variant.put(k.replace(".weight", ".default.weight"), e.getValue());
      }
    }
    Path dir = tmp.resolve("variant");
    Files.createDirectories(dir);
    Files.copy(fixture().resolve(PeftAdapter.CONFIG), dir.resolve(PeftAdapter.CONFIG));
    SafeTensorsWriter.write(dir.resolve(PeftAdapter.WEIGHTS), variant, DType.BF16, Map.of());
    PeftAdapter b = PeftAdapter.load(dir);
    assertEquals(a.tensors().keySet(), b.tensors().keySet());
    float[] x = a.embedTokens().orElseThrow().data();
    float[] y = b.embedTokens().orElseThrow().data();
    for (int i = 0; i < x.length; i++) {
      assertEquals(x[i], y[i], Math.abs(x[i]) / 128 + 1e-30);
    }
  }

  @Test
  void refusesWhatItWouldMisread() throws IOException {
    String base = Files.readString(fixture().resolve(PeftAdapter.CONFIG));
    Map<String, String> bad =
        Map.of(
            "\"use_dora\": true", "DoRA",
            "\"use_rslora\": true", "rsLoRA",
            "\"rank_pattern\": {\"q_proj\": 8}", "per-module ranks",
            "\"layers_to_transform\": [0]", "layers_to_transform",
            "\"peft_type\": \"IA3\"", "IA3");
    for (var e : bad.entrySet()) {
      Path dir = tmp.resolve("bad" + Math.abs(e.getKey().hashCode()));
      Files.createDirectories(dir);
      String json = base.replaceFirst("\\{", "{" + e.getKey() + ",");
      if (e.getValue().equals("IA3")) {
        json = base.replace("\"LORA\"", "\"IA3\"");
      }
      Files.writeString(dir.resolve(PeftAdapter.CONFIG), json);
      IOException ex =
          assertThrows(
              IOException.class, () -> PeftAdapter.readConfig(dir.resolve("adapter_config.json")));
      assertTrue(ex.getMessage().contains(e.getValue()), ex.getMessage());
    }
    Path regex = tmp.resolve("regex");
    Files.createDirectories(regex);
    Files.writeString(
        regex.resolve(PeftAdapter.CONFIG),
        base.replaceAll("\"target_modules\": \\[[^\\]]*\\]", "\"target_modules\": \".*q_proj\""));
    IOException ex = assertThrows(IOException.class, () -> PeftAdapter.load(regex));
    assertTrue(ex.getMessage().contains("regular expression"), ex.getMessage());

    Path pickle = tmp.resolve("pickle");
    Files.createDirectories(pickle);
    Files.writeString(pickle.resolve(PeftAdapter.CONFIG), base);
    Files.write(pickle.resolve("adapter_model.bin"), new byte[] {(byte) 0x80});
    ex = assertThrows(IOException.class, () -> PeftAdapter.load(pickle));
    assertTrue(ex.getMessage().contains("pickle"), ex.getMessage());
  }

  @Test
  void shapeAndNameErrorsNameTheKey() throws IOException {
    AdapterConfig c = AdapterConfig.llama(4, 8, 0.05, "base");
    String a = PeftAdapter.loraKey("model.layers.0.self_attn.q_proj", 'A');
    String b = PeftAdapter.loraKey("model.layers.0.self_attn.q_proj", 'B');
    Map<String, FloatTensor> m = new LinkedHashMap<>();
    m.put(a, FloatTensor.of(new float[3 * 8], 3, 8));
    m.put(b, FloatTensor.of(new float[8 * 4], 8, 4));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> new PeftAdapter(c, m));
    assertTrue(e.getMessage().contains(a) && e.getMessage().contains("r = 4"), e.getMessage());
    m.put(a, FloatTensor.of(new float[4 * 8], 4, 8));
    m.remove(b);
    e = assertThrows(IllegalArgumentException.class, () -> new PeftAdapter(c, m));
    assertTrue(e.getMessage().contains("no partner"), e.getMessage());
    m.put(b, FloatTensor.of(new float[8 * 4], 8, 4));
    m.put("base_model.model.model.norm.weight", FloatTensor.of(new float[8], 8, 1));
    e = assertThrows(IllegalArgumentException.class, () -> new PeftAdapter(c, m));
    assertTrue(e.getMessage().contains("unsupported tensor"), e.getMessage());
  }
}
