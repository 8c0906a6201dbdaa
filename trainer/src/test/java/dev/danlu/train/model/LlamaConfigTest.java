package dev.danlu.train.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LlamaConfigTest {
  @TempDir Path dir;

  private Path write(String json) throws IOException {
    return Files.writeString(dir.resolve("config.json"), json);
  }

  @Test
  void readsLlama2ConfigIgnoringUnknownKeys() throws IOException {
    write(
        "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":4096,\"intermediate_size\":11008,"
            + "\"num_hidden_layers\":32,\"num_attention_heads\":32,\"vocab_size\":55296,"
            + "\"rms_norm_eps\":1e-05,\"max_position_embeddings\":4096,\"torch_dtype\":\"float16\","
            + "\"rope_scaling\":null,\"pretraining_tp\":1}");
    LlamaConfig c = LlamaConfig.load(dir);
    assertEquals(32, c.numKvHeads());
    assertEquals(10000.0, c.ropeTheta());
    assertNull(c.ropeScaling());
    assertEquals(false, c.tieWordEmbeddings());
    assertEquals(128, c.headDim());
  }

  @Test
  void readsRopeScaling() throws IOException {
    write(
        "{\"hidden_size\":64,\"intermediate_size\":172,\"num_hidden_layers\":5,"
            + "\"num_attention_heads\":8,\"num_key_value_heads\":4,\"vocab_size\":512,"
            + "\"rms_norm_eps\":1e-5,\"max_position_embeddings\":512,\"rope_theta\":500000.0,"
            + "\"tie_word_embeddings\":true,\"rope_scaling\":{\"type\":\"dynamic\",\"factor\":4.0}}");
    LlamaConfig c = LlamaConfig.load(dir.resolve("config.json"));
    assertEquals(LlamaConfig.RopeScaling.Type.DYNAMIC, c.ropeScaling().type());
    assertEquals(4.0, c.ropeScaling().factor());
    assertEquals(500000.0, c.ropeTheta());
    assertEquals(32, c.kvDim());
    assertTrue(c.tieWordEmbeddings());
  }

  @Test
  void missingRequiredKeyNamesFileAndKey() throws IOException {
    Path f =
        write(
            "{\"hidden_size\":64,\"num_hidden_layers\":5,\"num_attention_heads\":8,"
                + "\"vocab_size\":512,\"rms_norm_eps\":1e-5,\"max_position_embeddings\":512}");
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> LlamaConfig.load(dir));
    assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
    assertTrue(e.getMessage().contains("intermediate_size"), e.getMessage());
  }

  @Test
  void rejectsUnknownRopeScalingType() throws IOException {
    write(
        "{\"hidden_size\":64,\"intermediate_size\":172,\"num_hidden_layers\":5,"
            + "\"num_attention_heads\":8,\"vocab_size\":512,\"rms_norm_eps\":1e-5,"
            + "\"max_position_embeddings\":512,\"rope_scaling\":{\"type\":\"yarn\",\"factor\":2}}");
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> LlamaConfig.load(dir));
    assertTrue(e.getMessage().contains("yarn"), e.getMessage());
  }

  @Test
  void missingFileIsAClearError() {
    IOException e = assertThrows(IOException.class, () -> LlamaConfig.load(dir));
    assertTrue(e.getMessage().contains("config.json"), e.getMessage());
  }
}
