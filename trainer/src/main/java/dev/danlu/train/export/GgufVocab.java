package dev.danlu.train.export;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.data.tokenizer.SentencePieceModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A SentencePiece {@code tokenizer.model} as GGUF tokenizer metadata, as {@code
 * convert_hf_to_gguf.py}'s {@code _set_vocab_sentencepiece} and {@code gguf.SpecialVocab} write it:
 * model "llama", pre "default", every piece with its score and type (the ModelProto piece types are
 * GGUF's token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte), the
 * vocabulary padded with {@code [PAD<i>]} (score -10000, unused) up to the model's rows, the
 * special ids from the model's TrainerSpec (bos/eos/pad overridden by config.json's *_token_id when
 * present) and add_bos/add_eos from tokenizer_config.json (llama.cpp's defaults otherwise: true,
 * false). llama.cpp's SPM tokenizer then tokenizes exactly as SentencePiece does for
 * identity-normalized models such as LLaMA-2's and Chinese-LLaMA-2's ({@code GgufRuntimeTest}).
 */
public final class GgufVocab {
  private GgufVocab() {}

  /** Adds the tokenizer keys for {@code spModel} with {@code nVocab} rows to {@code kv}. */
  public static void addTo(
      Map<String, Gguf.Value> kv, Path spModel, long nVocab, Path modelDir, Path tokenizerDir)
      throws IOException {
    SentencePieceModel sp =
        SentencePieceModel.parse(Files.readAllBytes(spModel), spModel.toString());
    if (sp.normalizerName() != null
        && !sp.normalizerName().isEmpty()
        && !sp.normalizerName().equals("identity")) {
      org.slf4j.LoggerFactory.getLogger(GgufVocab.class)
          .warn(
              "{}: normalizer '{}': llama.cpp does not normalize, so text that {} changes may"
                  + " tokenize differently",
              spModel,
              sp.normalizerName(),
              sp.normalizerName());
    }
    if (sp.size() > nVocab) {
      throw new IOException(
          spModel
              + ": "
              + sp.size()
              + " pieces but the model has only "
              + nVocab
              + " embedding rows; export the model with its own tokenizer.model");
    }
    List<String> tokens = new ArrayList<>((int) nVocab);
    List<Float> scores = new ArrayList<>((int) nVocab);
    List<Long> types = new ArrayList<>((int) nVocab);
    for (int i = 0; i < sp.size(); i++) {
      tokens.add(sp.piece(i));
      scores.add(sp.score(i));
      types.add((long) sp.type(i));
    }
    for (long i = sp.size(); i < nVocab; i++) {
      tokens.add("[PAD" + i + "]");
      scores.add(-10000f);
      types.add((long) SentencePieceModel.UNUSED);
    }
    kv.put("tokenizer.ggml.model", Gguf.Value.str("llama"));
    kv.put("tokenizer.ggml.pre", Gguf.Value.str("default"));
    kv.put("tokenizer.ggml.tokens", Gguf.Value.array(Gguf.STRING, tokens));
    kv.put("tokenizer.ggml.scores", Gguf.Value.array(Gguf.FLOAT32, scores));
    kv.put("tokenizer.ggml.token_type", Gguf.Value.array(Gguf.INT32, types));
    JsonNode config = readJson(modelDir.resolve("config.json"));
    JsonNode tokConfig = readJson(tokenizerDir.resolve("tokenizer_config.json"));
    long bos = idOr(config, "bos_token_id", sp.bosId());
    long eos = idOr(config, "eos_token_id", sp.eosId());
    long pad = idOr(config, "pad_token_id", sp.padId());
    if (bos >= 0) {
      kv.put("tokenizer.ggml.bos_token_id", Gguf.Value.u32(bos));
    }
    if (eos >= 0) {
      kv.put("tokenizer.ggml.eos_token_id", Gguf.Value.u32(eos));
    }
    if (sp.unkId() >= 0) {
      kv.put("tokenizer.ggml.unknown_token_id", Gguf.Value.u32(sp.unkId()));
    }
    if (pad >= 0) {
      kv.put("tokenizer.ggml.padding_token_id", Gguf.Value.u32(pad));
    }
    kv.put(
        "tokenizer.ggml.add_bos_token",
        Gguf.Value.bool(tokConfig.path("add_bos_token").asBoolean(true)));
    kv.put(
        "tokenizer.ggml.add_eos_token",
        Gguf.Value.bool(tokConfig.path("add_eos_token").asBoolean(false)));
    // llama.cpp prepends "▁" unless told otherwise; a model without SentencePiece's dummy prefix
    // must say so or every first word would tokenize differently.
    if (tokConfig.has("add_prefix_space")) {
      kv.put(
          "tokenizer.ggml.add_space_prefix",
          Gguf.Value.bool(tokConfig.get("add_prefix_space").asBoolean()));
    } else if (!sp.addDummyPrefix()) {
      kv.put("tokenizer.ggml.add_space_prefix", Gguf.Value.bool(false));
    }
  }

  private static long idOr(JsonNode n, String key, long dflt) {
    JsonNode v = n.get(key);
    return v != null && v.isIntegralNumber() ? v.asLong() : dflt;
  }

  private static JsonNode readJson(Path p) throws IOException {
    if (!Files.isRegularFile(p)) {
      return new ObjectMapper().createObjectNode();
    }
    try {
      return new ObjectMapper().readTree(p.toFile());
    } catch (IOException e) {
      throw new IOException(p + ": not valid JSON: " + e.getMessage(), e);
    }
  }
}
