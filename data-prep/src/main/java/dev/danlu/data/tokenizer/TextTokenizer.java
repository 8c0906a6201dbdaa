package dev.danlu.data.tokenizer;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * Encodes text to LLaMA token ids exactly as the SentencePiece C++ library does. Thread-safe.
 *
 * <p>Pretraining wraps each line as {@code <s> ids </s>}; the BOS/EOS ids come from {@link
 * #bosId()} / {@link #eosId()}, {@link #encode} never adds them.
 */
public interface TextTokenizer extends AutoCloseable {

  /**
   * Loads a SentencePiece {@code *.model} or a Hugging Face {@code tokenizer.json}, told apart by
   * content (a JSON object starts with '{'), not by the file name.
   *
   * @throws IOException naming the path if it is missing, unreadable or not a tokenizer
   */
  static TextTokenizer load(Path path) throws IOException {
    if (!Files.exists(path)) {
      throw new NoSuchFileException(
          path.toString(), null, "tokenizer file does not exist; pass a tokenizer.model or json");
    }
    if (!Files.isRegularFile(path) || !Files.isReadable(path)) {
      throw new IOException("tokenizer " + path + " is not a readable regular file");
    }
    int first = firstNonBlankByte(path);
    if (first == -1) {
      throw new IOException("tokenizer " + path + " is empty");
    }
    if (first == '{') {
      return HfJsonTokenizer.load(path);
    }
    return SentencePieceTokenizer.load(path);
  }

  /** Token ids of {@code text}, no BOS/EOS; identical to {@code spm_encode --output_format=id}. */
  int[] encode(String text);

  /** Text of {@code ids} as SentencePiece's DecodeIds gives it (for printing generations). */
  String decode(int[] ids);

  /** The piece string of {@code id}, e.g. {@code ▁the} or {@code <0x0A>}. */
  String piece(int id);

  /** Number of pieces (55296 Chinese-LLaMA-2, 32000 LLaMA-2, 512 stories260K). */
  int vocabSize();

  /** Beginning-of-sequence id (1 for LLaMA). */
  int bosId();

  /** End-of-sequence id (2 for LLaMA). */
  int eosId();

  /**
   * Padding id, -1 if the model defines none (LLaMA-2); 32000 for Chinese-LLaMA-2's {@code <pad>}.
   */
  int padId();

  /** Hex sha256 of the tokenizer file's bytes; keys caches and shards. */
  String sha256();

  @Override
  void close();

  private static int firstNonBlankByte(Path path) throws IOException {
    try (InputStream in = Files.newInputStream(path)) {
      byte[] head = in.readNBytes(64);
      for (byte b : head) {
        if (b != ' ' && b != '\n' && b != '\r' && b != '\t') {
          return b & 0xff;
        }
      }
      return head.length == 0 ? -1 : ' ';
    }
  }
}
