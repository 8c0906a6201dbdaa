package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.checkpoint.SafeTensors;
import dev.danlu.train.lora.LoraAdapter;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tokenizer ↔ shards ↔ model vocabulary: a larger tokenizer resizes the trained embed_tokens /
 * lm_head; without them in modules_to_save it is refused; a token id beyond the model's vocabulary
 * is refused naming the row.
 */
class VocabConsistencyTest {
  @TempDir Path tmp;

  @Test
  void largerTokenizerResizesTrainedEmbeddingsOrIsRefused() throws Exception {
    Path model = TinyRun.writeModel(tmp.resolve("model"), TinyRun.tinyConfig(), 3);
    // ids up to 47: a tokenizer of 48 pieces on a model of 40 embeddings
    Path data =
        TinyRun.writeDataset(
            tmp.resolve("data"),
            TinyRun.blocks(12, 8, 48, 1),
            TinyRun.blocks(2, 8, 48, 2),
            8,
            48,
            TinyRun.TOKENIZER_SHA);
    Path out = tmp.resolve("out");
    String log = Ranks.run(1, TinyRun.config(model, data, out, "max_steps=2"));
    assertTrue(log.contains("vocabulary resized from 40 to the tokenizer's 48"), log);
    try (SafeTensors st =
        SafeTensors.open(out.resolve("pt_lora_model/adapter_model.safetensors"))) {
      assertArrayEquals(new long[] {48, 16}, st.info(LoraAdapter.EMBED_KEY).shape());
      assertArrayEquals(new long[] {48, 16}, st.info(LoraAdapter.LM_HEAD_KEY).shape());
    }
    Exception e =
        assertThrows(
            Exception.class,
            () ->
                Ranks.run(
                    1,
                    TinyRun.config(
                        model, data, tmp.resolve("out2"), "max_steps=2", "modules_to_save=")));
    assertTrue(e.getMessage().contains("tokenizer has 48 pieces but the model"), e.getMessage());
  }

  @Test
  void tokenIdOutsideTheVocabularyIsRefusedNamingTheRow() throws Exception {
    Path model = TinyRun.writeModel(tmp.resolve("model"), TinyRun.tinyConfig(), 3);
    List<int[]> train = TinyRun.blocks(12, 8, 40, 1);
    train.get(5)[3] = 44; // the manifest claims a 40-piece tokenizer
    Path data =
        TinyRun.writeDataset(
            tmp.resolve("data"), train, TinyRun.blocks(2, 8, 40, 2), 8, 40, TinyRun.TOKENIZER_SHA);
    Exception e =
        assertThrows(
            Exception.class,
            () ->
                Ranks.run(
                    1,
                    TinyRun.config(
                        model,
                        data,
                        tmp.resolve("out"),
                        "max_steps=12",
                        "modules_to_save=",
                        "lr_scheduler_type=constant")));
    assertTrue(
        e.getMessage().contains("train row 5 position 3 has token id 44, outside the model's"),
        e.getMessage());
  }
}
