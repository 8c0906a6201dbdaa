package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.train.checkpoint.DType;
import dev.danlu.train.checkpoint.Merge;
import dev.danlu.train.checkpoint.TrainedRope;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaConfig.RopeScaling;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * PI training to the model's new length and back out through merge: a run with {@code rope_scaling:
 * linear} at block_size 12 on a model of max_position_embeddings 8 (factor ceil(12 / 8) = 2, the
 * reference's 4K → 16K in miniature) leaves rope_scaling.json beside its checkpoint and final
 * adapters; {@code danlu merge} writes {@code rope_scaling: {type: linear, factor: 2.0}} and
 * max_position_embeddings 16 into the merged config.json (every other key as the base's), and the
 * merged model loads with them. A run without PI leaves no file and merge keeps the base config.
 */
class PositionInterpolationMergeTest {
  @TempDir Path tmp;
  private static final ObjectMapper JSON = new ObjectMapper();

  private Path base() throws IOException {
    LlamaConfig c = new LlamaConfig(16, 24, 2, 4, 2, 40, 1e-5, 10000.0, null, false, 8);
    return TinyRun.writeModel(tmp.resolve("model"), c, 11);
  }

  @Test
  void mergedConfigCarriesTheTrainedRopeScaling() throws Exception {
    Path model = base();
    Path data = TinyRun.writeTinyDataset(tmp.resolve("data"), 8, 2);
    Path out = tmp.resolve("pi");
    Ranks.run(
        1,
        TinyRun.config(
            model,
            data,
            out,
            "max_steps=2",
            "save_steps=1",
            "rope_scaling=linear",
            "block_size=12"));
    Path adapter = out.resolve("pt_lora_model");
    TrainedRope.Settings want = new TrainedRope.Settings("linear", 2.0, 16);
    assertEquals(want, TrainedRope.read(adapter).orElseThrow());
    assertEquals(want, TrainedRope.read(out.resolve("checkpoint-2")).orElseThrow());

    Path merged = tmp.resolve("merged");
    Merge.run(new Merge.Options(model, adapter, merged, DType.F32, 1L << 30, false));
    JsonNode cfg = JSON.readTree(merged.resolve("config.json").toFile());
    JsonNode baseCfg = JSON.readTree(model.resolve("config.json").toFile());
    assertEquals("linear", cfg.path("rope_scaling").path("type").asText());
    assertEquals(2.0, cfg.path("rope_scaling").path("factor").asDouble());
    assertEquals(16, cfg.path("max_position_embeddings").asInt());
    for (Iterator<String> it = baseCfg.fieldNames(); it.hasNext(); ) {
      String k = it.next();
      if (!k.equals("rope_scaling") && !k.equals("max_position_embeddings")) {
        assertEquals(baseCfg.get(k), cfg.get(k), "config key " + k + " as the base's");
      }
    }
    LlamaConfig loaded = HfLlama.load(merged, org.nd4j.linalg.api.buffer.DataType.FLOAT).config();
    assertEquals(new RopeScaling(RopeScaling.Type.LINEAR, 2.0), loaded.ropeScaling());
    assertEquals(16, loaded.maxPositionEmbeddings());
    // eval/generate with the unmerged adapter put the base under the same rotary settings
    LlamaConfig unmerged =
        HfLlama.withTrainedRope(
                HfLlama.load(model, org.nd4j.linalg.api.buffer.DataType.FLOAT), adapter)
            .config();
    assertEquals(loaded.ropeScaling(), unmerged.ropeScaling());
    assertEquals(16, unmerged.maxPositionEmbeddings());
  }

  @Test
  void withoutInterpolationNothingChangesAndABadFileIsNamed() throws Exception {
    Path model = base();
    Path data = TinyRun.writeTinyDataset(tmp.resolve("data"), 8, 2);
    Path out = tmp.resolve("plain");
    Ranks.run(1, TinyRun.config(model, data, out, "max_steps=1", "block_size=12"));
    Path adapter = out.resolve("pt_lora_model");
    assertFalse(Files.exists(adapter.resolve(TrainedRope.FILE)));
    Path merged = tmp.resolve("merged");
    Merge.run(new Merge.Options(model, adapter, merged, null, 1L << 30, false));
    JsonNode cfg = JSON.readTree(merged.resolve("config.json").toFile());
    JsonNode baseCfg = JSON.readTree(model.resolve("config.json").toFile());
    assertEquals(baseCfg.get("rope_scaling"), cfg.get("rope_scaling"));
    assertEquals(8, cfg.path("max_position_embeddings").asInt());

    Files.writeString(
        adapter.resolve(TrainedRope.FILE),
        "{\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4.0}, \"max_position_embeddings\": 32}");
    IOException e =
        assertThrows(
            IOException.class,
            () ->
                Merge.run(
                    new Merge.Options(
                        model, adapter, tmp.resolve("merged2"), null, 1L << 30, false)));
    assertTrue(e.getMessage().contains(TrainedRope.FILE), e.getMessage());
    assertTrue(e.getMessage().contains("rope_scaling.type"), e.getMessage());
  }
}
