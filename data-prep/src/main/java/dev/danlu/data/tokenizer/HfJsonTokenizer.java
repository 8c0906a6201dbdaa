package dev.danlu.data.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Hugging Face {@code tokenizer.json} run by the Rust tokenizers library through DJL. Special
 * tokens are never added by {@link #encode}; BOS/EOS/PAD ids are read from the json ({@code
 * post_processor} template and {@code added_tokens}). The piece table comes from the json too.
 *
 * <p>Its ids are Hugging Face's, which are not always SentencePiece's for the same model (see
 * {@link #SPM_DIFFERENCES}; measured in HfJsonEquivalenceTest), so loading one warns.
 */
public final class HfJsonTokenizer implements TextTokenizer {
  private static final Logger LOG = LoggerFactory.getLogger(HfJsonTokenizer.class);

  /** Where a LLaMA tokenizer.json gives other ids than spm_encode on the same model. */
  static final String SPM_DIFFERENCES =
      "ids may differ from SentencePiece (spm_encode) for the same model: (1) text containing an"
          + " added token literally (\"<s>\", \"</s>\", \"<unk>\") becomes that special id,"
          + " and the text around it gets its own \"▁\" prefix; (2) where pieces have equal"
          + " scores HF merges by rank, SentencePiece leftmost first: for Chinese-LLaMA-2 (its"
          + " 23296 added pieces all score 0) about 7% of Chinese lines segment differently."
          + " Identical otherwise (LLaMA-2 32000: real English and Chinese text). Pass the"
          + " tokenizer.model for spm-exact ids.";

  private final Path path;
  private final String sha256;
  private final String[] pieces;
  private final int bosId;
  private final int eosId;
  private final int padId;
  private final HuggingFaceTokenizer tokenizer;
  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  private boolean closed;

  private HfJsonTokenizer(
      Path path,
      String sha256,
      String[] pieces,
      int bosId,
      int eosId,
      int padId,
      HuggingFaceTokenizer tokenizer) {
    this.path = path;
    this.sha256 = sha256;
    this.pieces = pieces;
    this.bosId = bosId;
    this.eosId = eosId;
    this.padId = padId;
    this.tokenizer = tokenizer;
  }

  /** Loads a tokenizer.json; errors name the path. */
  public static HfJsonTokenizer load(Path path) throws IOException {
    byte[] bytes = Files.readAllBytes(path);
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(bytes);
    } catch (IOException e) {
      throw new IOException(
          path + " is not a Hugging Face tokenizer.json (invalid JSON: " + e.getMessage() + ")", e);
    }
    JsonNode vocab = root.path("model").path("vocab");
    if (!vocab.isObject() || vocab.isEmpty()) {
      throw new IOException(
          path
              + " is not a Hugging Face tokenizer.json: no model.vocab object (only BPE/WordPiece"
              + " style vocabularies are supported)");
    }
    Map<String, Integer> ids = new HashMap<>();
    int max = -1;
    for (Iterator<Map.Entry<String, JsonNode>> it = vocab.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      ids.put(e.getKey(), e.getValue().asInt());
      max = Math.max(max, e.getValue().asInt());
    }
    for (JsonNode t : root.path("added_tokens")) {
      ids.putIfAbsent(t.path("content").asText(), t.path("id").asInt());
      max = Math.max(max, t.path("id").asInt());
    }
    String[] pieces = new String[max + 1];
    ids.forEach((piece, id) -> pieces[id] = piece);
    for (int i = 0; i < pieces.length; i++) {
      if (pieces[i] == null) {
        throw new IOException(path + ": id " + i + " has no token in model.vocab or added_tokens");
      }
    }
    int bos = specialId(root, ids, true, "<s>");
    int eos = specialId(root, ids, false, "</s>");
    int pad = ids.getOrDefault("<pad>", -1);
    NativeLibs.configure();
    HuggingFaceTokenizer tokenizer;
    try {
      tokenizer =
          HuggingFaceTokenizer.builder()
              .optTokenizerPath(path)
              .optAddSpecialTokens(false)
              .optTruncation(false)
              .optPadding(false)
              .build();
    } catch (IOException | RuntimeException e) {
      throw new IOException(
          "Hugging Face tokenizers could not load " + path + ": " + e.getMessage(), e);
    }
    return new HfJsonTokenizer(path, Hashing.sha256Hex(bytes), pieces, bos, eos, pad, tokenizer);
  }

  /**
   * BOS is the special token the {@code post_processor}'s single-sequence template puts first; EOS
   * the one it puts last (LLaMA-2's template has none, so EOS falls back to the {@code </s>}
   * token).
   */
  private static int specialId(
      JsonNode root, Map<String, Integer> ids, boolean first, String fallback) {
    JsonNode single = root.path("post_processor").path("single");
    if (single.isArray() && !single.isEmpty()) {
      JsonNode end = single.get(first ? 0 : single.size() - 1);
      String name = end.path("SpecialToken").path("id").asText(null);
      if (name != null && ids.containsKey(name)) {
        return ids.get(name);
      }
    }
    return ids.getOrDefault(fallback, -1);
  }

  @Override
  public int[] encode(String text) {
    long[] ids;
    lock.readLock().lock();
    try {
      ensureOpen();
      ids = tokenizer.encode(withoutLoneSurrogates(text), false, false).getIds();
    } finally {
      lock.readLock().unlock();
    }
    int[] out = new int[ids.length];
    for (int i = 0; i < ids.length; i++) {
      out[i] = (int) ids[i];
    }
    return out;
  }

  /**
   * A lone surrogate has no UTF-8 form. DJL hands it to Rust as something else again; send '?' like
   * {@code String.getBytes(UTF_8)} and the SentencePiece path do, so both paths agree.
   */
  static String withoutLoneSurrogates(String text) {
    char[] chars = null;
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (Character.isHighSurrogate(c)
          && i + 1 < text.length()
          && Character.isLowSurrogate(text.charAt(i + 1))) {
        i++;
      } else if (Character.isSurrogate(c)) {
        if (chars == null) {
          chars = text.toCharArray();
        }
        chars[i] = '?';
      }
    }
    return chars == null ? text : new String(chars);
  }

  @Override
  public String decode(int[] ids) {
    long[] longs = new long[ids.length];
    for (int i = 0; i < ids.length; i++) {
      checkId(ids[i], "ids[" + i + "]");
      longs[i] = ids[i];
    }
    lock.readLock().lock();
    try {
      ensureOpen();
      return tokenizer.decode(longs, false);
    } finally {
      lock.readLock().unlock();
    }
  }

  @Override
  public String piece(int id) {
    checkId(id, "id");
    return pieces[id];
  }

  @Override
  public int vocabSize() {
    return pieces.length;
  }

  @Override
  public int bosId() {
    return bosId;
  }

  @Override
  public int eosId() {
    return eosId;
  }

  @Override
  public int padId() {
    return padId;
  }

  @Override
  public String sha256() {
    return sha256;
  }

  @Override
  public void close() {
    lock.writeLock().lock();
    try {
      if (!closed) {
        closed = true;
        tokenizer.close();
      }
    } finally {
      lock.writeLock().unlock();
    }
  }

  @Override
  public String toString() {
    return "HfJsonTokenizer(" + path + ", " + pieces.length + " pieces)";
  }

  private void checkId(int id, String what) {
    if (id < 0 || id >= pieces.length) {
      throw new IllegalArgumentException(
          what + " = " + id + " is outside [0, " + pieces.length + ") of " + path);
    }
  }

  private void ensureOpen() {
    if (closed) {
      throw new IllegalStateException("tokenizer " + path + " is closed");
    }
  }
}
