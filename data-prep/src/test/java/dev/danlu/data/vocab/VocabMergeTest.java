package dev.danlu.data.vocab;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.tokenizer.SentencePieceModel;
import dev.danlu.data.tokenizer.SentencePieceTokenizer;
import dev.danlu.testkit.Prereq;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code vocab merge} against the reference merge (Chinese-LLaMA-Alpaca's merge_tokenizers.py
 * semantics, run here with python3-sentencepiece's ModelProto and python3-protobuf): the same file,
 * the same pieces (piece, score, type) and the same encoding of Chinese and English text.
 */
class VocabMergeTest {
  @TempDir Path tmp;

  // The reference algorithm, re-stated (not the project's script): parse both ModelProtos, append
  // every piece of the added model missing from the base with score 0, serialize.
  private static final String ORACLE =
      String.join(
          "\n",
          "import sys",
          "from sentencepiece import sentencepiece_model_pb2 as pb",
          "base = pb.ModelProto(); base.ParseFromString(open(sys.argv[1], 'rb').read())",
          "add = pb.ModelProto(); add.ParseFromString(open(sys.argv[2], 'rb').read())",
          "have = set(p.piece for p in base.pieces)",
          "for p in add.pieces:",
          "    if p.piece not in have:",
          "        q = pb.ModelProto().SentencePiece(); q.piece = p.piece; q.score = 0",
          "        base.pieces.append(q)",
          "open(sys.argv[3], 'wb').write(base.SerializeToString())");

  static Path llama2() {
    return Prereq.cached("corpora/tokenizers/llama2-tokenizer.model");
  }

  private Path chineseModel() throws Exception {
    SpmTrain.assumeInstalled();
    List<Path> files = BpeTrainerSpmTest.poems(1);
    Path out = tmp.resolve("zh.model");
    Files.write(out, SpmTrain.trainLocal(files.subList(0, 1), BpeSpec.defaults(5000)));
    return out;
  }

  @Test
  void equalsTheReferenceMergePieceByPieceAndInEncoding() throws Exception {
    Prereq.python("sentencepiece", "google.protobuf");
    Path base = llama2();
    Path add = chineseModel();
    VocabMerge.Result r =
        VocabMerge.merge(
            Files.readAllBytes(base), base.toString(), Files.readAllBytes(add), add.toString());
    Path ours = tmp.resolve("ours.model");
    Files.write(ours, r.bytes());
    Path script = Files.writeString(tmp.resolve("merge.py"), ORACLE);
    Path ref = tmp.resolve("ref.model");
    Process p =
        new ProcessBuilder(
                "/usr/bin/python3",
                script.toString(),
                base.toString(),
                add.toString(),
                ref.toString())
            .redirectErrorStream(true)
            .start();
    String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0, log);

    SentencePieceModel a = SentencePieceModel.parse(r.bytes(), "ours");
    SentencePieceModel b = SentencePieceModel.parse(Files.readAllBytes(ref), "reference");
    assertEquals(b.size(), a.size());
    assertTrue(r.added().size() > 1000, "added " + r.added().size());
    assertEquals(32000 + r.added().size(), a.size());
    for (int i = 0; i < a.size(); i++) {
      assertEquals(b.piece(i), a.piece(i), "piece " + i);
      assertEquals(b.score(i), a.score(i), "score " + i);
      assertEquals(b.type(i), a.type(i), "type " + i);
    }
    // protobuf's serializer lays fields out as we do: the whole file is the same
    assertArrayEquals(Files.readAllBytes(ref), r.bytes());

    List<String> sample =
        List.of(
            "床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。",
            "The quick brown fox 跳過了 the lazy dog 12345.",
            "  spaces   and\ttabs 和 emoji 😀 ");
    try (SentencePieceTokenizer t = SentencePieceTokenizer.load(ours);
        SentencePieceTokenizer u = SentencePieceTokenizer.load(ref)) {
      for (String s : sample) {
        assertArrayEquals(u.encodeNative(s), t.encodeNative(s), s);
        assertArrayEquals(t.encodeNative(s), t.encode(s), s);
      }
    }
  }

  @Test
  void baseThatIsNotASentencePieceModelIsRefusedNamingTheFile() throws IOException {
    Path bogus =
        Files.writeString(tmp.resolve("tokenizer.json"), "{\"model\": {\"type\": \"BPE\"}}");
    IOException e =
        assertThrows(
            IOException.class,
            () ->
                VocabMerge.merge(
                    Files.readAllBytes(bogus),
                    bogus.toString(),
                    new byte[] {10, 3, 10, 1, 97},
                    "add"));
    assertTrue(e.getMessage().startsWith(bogus.toString()), e.getMessage());
    assertTrue(e.getMessage().contains("not a SentencePiece model"), e.getMessage());
  }
}
