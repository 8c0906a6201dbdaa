package dev.danlu.train.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.train.checkpoint.HfCheckpoint;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

class RandomInitTest {
  @TempDir Path tmp;

  private static LlamaConfig config(int layers) {
    return new LlamaConfig(16, 44, layers, 4, 2, 1000, 1e-5, 10000.0, null, false, 64);
  }

  private Path tokenizer() throws IOException {
    Path t = tmp.resolve("source-tokenizer.model");
    byte[] bytes = new byte[300];
    for (int i = 0; i < bytes.length; i++) {
      bytes[i] = (byte) (i * 7);
    }
    Files.write(t, bytes);
    return t;
  }

  @Test
  void writtenDirectoryLoadsBackWithTheGeneratedValues() throws IOException {
    LlamaConfig c = config(2);
    Path dir = tmp.resolve("tiny");
    Path tok = tokenizer();
    RandomInit.writeHfDir(dir, c, 42, tok);

    assertEquals(c, LlamaConfig.load(dir));
    assertArrayEquals(Files.readAllBytes(tok), Files.readAllBytes(dir.resolve("tokenizer.model")));
    JsonNode json = new ObjectMapper().readTree(dir.resolve("config.json").toFile());
    assertEquals("llama", json.get("model_type").asText());
    assertEquals("LlamaForCausalLM", json.get("architectures").get(0).asText());

    // the model loader (shape checks against config.json) accepts the directory
    LlamaWeights w = HfLlama.load(dir, DataType.FLOAT);
    assertEquals(2, w.layers().length);

    List<RandomInit.TensorSpec> specs = RandomInit.tensors(c);
    assertEquals(1 + 2 * 9 + 1 + 1, specs.size());
    try (HfCheckpoint ck = HfCheckpoint.open(dir)) {
      for (RandomInit.TensorSpec s : specs) {
        assertArrayEquals(s.shape(), ck.info(s.name()).shape(), s.name());
        assertArrayEquals(RandomInit.values(42, s), ck.readFloats(s.name()), s.name());
      }
    }
    float[] norm = w.norm().toFloatVector();
    for (float v : norm) {
      assertEquals(1f, v);
    }
  }

  @Test
  void matricesAreNormalWithTheInitializerRange() {
    RandomInit.TensorSpec embed = RandomInit.tensors(config(1)).get(0);
    float[] v = RandomInit.values(7, embed);
    assertEquals(16_000, v.length);
    double sum = 0;
    double sq = 0;
    int beyond2Sigma = 0;
    for (float x : v) {
      sum += x;
      sq += x * x;
      if (Math.abs(x) > 2 * RandomInit.INITIALIZER_RANGE) {
        beyond2Sigma++;
      }
    }
    double mean = sum / v.length;
    double std = Math.sqrt(sq / v.length - mean * mean);
    // standard errors: mean 0.02/sqrt(16000) = 1.6e-4, std about 0.56%
    assertEquals(0, mean, 6e-4);
    assertEquals(RandomInit.INITIALIZER_RANGE, std, 0.02 * 0.03);
    // a normal puts 4.55% beyond 2 sigma
    assertEquals(0.0455, beyond2Sigma / (double) v.length, 0.006);
  }

  @Test
  void valuesAreKeyedBySeedAndNameNotByPosition() {
    Map<String, RandomInit.TensorSpec> two = byName(config(2));
    Map<String, RandomInit.TensorSpec> three = byName(config(3));
    // adding a layer leaves the existing tensors as they were
    for (String name : two.keySet()) {
      assertArrayEquals(
          RandomInit.values(5, two.get(name)), RandomInit.values(5, three.get(name)), name);
    }
    RandomInit.TensorSpec gate = two.get("model.layers.0.mlp.gate_proj.weight");
    RandomInit.TensorSpec up = two.get("model.layers.0.mlp.up_proj.weight");
    assertArrayEquals(gate.shape(), up.shape());
    assertFalse(Arrays.equals(RandomInit.values(5, gate), RandomInit.values(5, up)));
    assertFalse(Arrays.equals(RandomInit.values(5, gate), RandomInit.values(6, gate)));
    assertArrayEquals(RandomInit.values(5, gate), RandomInit.values(5, gate));
  }

  @Test
  void tiedEmbeddingsStoreNoLmHead() {
    LlamaConfig tied = new LlamaConfig(16, 44, 1, 4, 2, 1000, 1e-5, 10000.0, null, true, 64);
    assertTrue(RandomInit.tensors(tied).stream().noneMatch(s -> s.name().equals("lm_head.weight")));
    assertTrue(
        RandomInit.tensors(config(1)).stream().anyMatch(s -> s.name().equals("lm_head.weight")));
  }

  @Test
  void missingTokenizerIsNamed() {
    Path missing = tmp.resolve("nope/tokenizer.model");
    IOException e =
        assertThrows(
            IOException.class,
            () -> RandomInit.writeHfDir(tmp.resolve("out"), config(1), 1, missing));
    assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());
    assertFalse(Files.exists(tmp.resolve("out/config.json")));
  }

  private static Map<String, RandomInit.TensorSpec> byName(LlamaConfig c) {
    return RandomInit.tensors(c).stream()
        .collect(Collectors.toMap(RandomInit.TensorSpec::name, Function.identity()));
  }
}
