package dev.danlu.train.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Model directories: single file, sharded with index, pickles refused, real stories260K. */
class HfCheckpointTest {
  @TempDir Path tmp;

  @Test
  void shardedDirectoryResolvesEveryTensorThroughTheIndex() throws IOException {
    float[] a = SafeTensorsTest.random(6, 1);
    float[] b = SafeTensorsTest.random(4, 2);
    SafeTensorsWriter.write(
        tmp.resolve("model-00001-of-00002.safetensors"),
        Map.of("a", FloatTensor.of(a, 2, 3)),
        DType.F32,
        Map.of());
    SafeTensorsWriter.write(
        tmp.resolve("model-00002-of-00002.safetensors"),
        Map.of("b", FloatTensor.of(b, 4)),
        DType.BF16,
        Map.of());
    Files.writeString(
        tmp.resolve(HfCheckpoint.INDEX),
        "{\"metadata\":{\"total_size\":32},\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
            + "\"b\":\"model-00002-of-00002.safetensors\"}}");
    try (HfCheckpoint ck = HfCheckpoint.open(tmp)) {
      assertEquals(Set.of("a", "b"), ck.names());
      assertArrayEquals(a, ck.readFloats("a"));
      assertEquals(DType.BF16, ck.info("b").dtype());
      assertEquals(4, ck.readFloats("b").length);
      assertThrows(IllegalArgumentException.class, () -> ck.info("c"));
    }
    // An index pointing at a tensor the shard lacks is refused at open.
    Files.writeString(
        tmp.resolve(HfCheckpoint.INDEX),
        "{\"weight_map\":{\"a\":\"model-00002-of-00002.safetensors\","
            + "\"b\":\"model-00002-of-00002.safetensors\"}}");
    IOException e = assertThrows(IOException.class, () -> HfCheckpoint.open(tmp));
    assertTrue(e.getMessage().contains("'a'"), e.getMessage());
    Files.writeString(
        tmp.resolve(HfCheckpoint.INDEX),
        "{\"weight_map\":{\"a\":\"model-00009-of-00009.safetensors\"}}");
    e = assertThrows(IOException.class, () -> HfCheckpoint.open(tmp));
    assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
  }

  @Test
  void picklesAreRefusedWithAHint() throws IOException {
    Files.write(tmp.resolve("pytorch_model.bin"), new byte[] {(byte) 0x80, 2});
    IOException e = assertThrows(IOException.class, () -> HfCheckpoint.open(tmp));
    assertTrue(e.getMessage().contains("pytorch_model.bin"), e.getMessage());
    assertTrue(e.getMessage().contains("safe_serialization"), e.getMessage());
  }

  @Test
  void loadsStories260K() throws IOException {
    Path dir =
        dev.danlu.testkit.Prereq.shared("fixtures/stories260K/model.safetensors").getParent();
    try (HfCheckpoint ck = HfCheckpoint.open(dir)) {
      // 5 layers x 9 weights (4 attention, 3 MLP, 2 norms) + embed_tokens + norm + lm_head.
      assertEquals(48, ck.names().size());
      assertArrayEquals(new long[] {512, 64}, ck.info("model.embed_tokens.weight").shape());
      assertArrayEquals(
          new long[] {172, 64}, ck.info("model.layers.4.mlp.gate_proj.weight").shape());
      // Tied embeddings: the file stores lm_head equal to embed_tokens.
      assertArrayEquals(
          ck.readFloats("model.embed_tokens.weight"), ck.readFloats("lm_head.weight"));
      Map<String, Long> counts = new LinkedHashMap<>();
      for (String n : ck.names()) {
        counts.merge(ck.info(n).dtype().name(), 1L, Long::sum);
      }
      assertEquals(Map.of("F32", 48L), counts);
    }
  }
}
