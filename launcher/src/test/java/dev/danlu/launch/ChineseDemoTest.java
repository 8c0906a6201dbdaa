package dev.danlu.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.manifest.ManifestIo;
import dev.danlu.data.tokenizer.SentencePieceModel;
import dev.danlu.testkit.Prereq;
import dev.danlu.train.checkpoint.SafeTensors;
import dev.danlu.train.lora.LoraAdapter;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code danlu demo --chinese} at a tiny size (one poem file, 200 merges, 2 steps on one rank): the
 * stages it reports, the files it writes, the merged vocabulary the model was resized to, fewer
 * tokens per character with the merged tokenizer than with LLaMA-2's.
 */
class ChineseDemoTest {
  @TempDir Path tmp;

  @Test
  void vocabularyExtensionDemoAtATinySize() throws Exception {
    Prereq.cached("corpora/chinese/.done");
    Prereq.cached("corpora/tokenizers/llama2-tokenizer.model");
    Path work = tmp.resolve("demo-zh");
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    PrintStream out = new PrintStream(buf, true, StandardCharsets.UTF_8);
    ChineseDemo.Report r =
        ChineseDemo.execute(
            DemoCommand.repoDir(),
            work,
            false,
            new ChineseDemo.Size(150_000, 100, 200, 32, 2, 1),
            out);
    String text = buf.toString(StandardCharsets.UTF_8);
    System.out.print(text);
    assertEquals(0, r.exitCode(), text);
    for (String stage :
        new String[] {"corpus", "vocab train", "vocab merge", "tokens/char", "prep", "train"}) {
      assertTrue(
          r.table().rows().stream()
              .anyMatch(x -> x.stage().equals(stage) && x.status().equals("done")),
          stage + "\n" + text);
    }
    SentencePieceModel zh =
        SentencePieceModel.parse(Files.readAllBytes(work.resolve("zh.model")), "zh");
    SentencePieceModel merged =
        SentencePieceModel.parse(Files.readAllBytes(work.resolve("merged.model")), "merged");
    assertEquals(r.zhVocab(), zh.size());
    assertEquals("nmt_nfkc", zh.normalizerName());
    assertEquals(32000 + r.added(), merged.size());
    assertEquals(r.mergedVocab(), merged.size());
    // LLaMA-2 has a few hundred Chinese characters; the extension adds most of the alphabet
    assertTrue(r.added() > 1000, "added " + r.added());
    assertTrue(r.tpcMerged() < 0.8 * r.tpcBase(), r.tpcBase() + " -> " + r.tpcMerged());
    assertEquals(
        merged.size(), ManifestIo.readCurrent(work.resolve("shards")).params().vocabSize());
    try (SafeTensors st =
        SafeTensors.open(work.resolve("output/pt_lora_model/adapter_model.safetensors"))) {
      assertEquals(merged.size(), st.info(LoraAdapter.EMBED_KEY).shape()[0]);
      assertEquals(merged.size(), st.info(LoraAdapter.LM_HEAD_KEY).shape()[0]);
    }
    assertTrue(
        text.contains("resized from 32000 to " + merged.size()) && text.contains("summary"), text);
  }
}
