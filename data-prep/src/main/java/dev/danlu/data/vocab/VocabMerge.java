package dev.danlu.data.vocab;

import dev.danlu.data.tokenizer.SentencePieceModel;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Vocabulary extension as Chinese-LLaMA-Alpaca's {@code merge_tokenizers.py} does it: every piece
 * of the added model that the base model lacks is appended, in the added model's order, with score
 * 0 and the default (normal) type; the base pieces, their ids, and every other field of the base
 * ModelProto (trainer_spec, normalizer_spec, unknown fields) are kept byte for byte.
 *
 * <p>The output is laid out as protobuf's serializer lays out the reference's re-serialized
 * message: the pieces first, then the other known fields by number, then unknown fields in their
 * order.
 */
public final class VocabMerge {
  private VocabMerge() {}

  /** The merged model and what was added. */
  public record Result(byte[] bytes, int baseSize, List<String> added) {
    public int mergedSize() {
      return baseSize + added.size();
    }
  }

  /**
   * Merges {@code add} into {@code base}.
   *
   * @param baseSource named in errors (the --base path)
   * @param addSource named in errors (the --add path)
   * @throws IOException if either is not a SentencePiece model
   */
  public static Result merge(byte[] base, String baseSource, byte[] add, String addSource)
      throws IOException {
    SentencePieceModel baseModel = SentencePieceModel.parse(base, baseSource);
    SentencePieceModel addModel = SentencePieceModel.parse(add, addSource);
    List<Proto.Field> baseFields = Proto.fields(base, baseSource);

    Set<String> have = new HashSet<>(baseModel.size() * 2);
    for (int i = 0; i < baseModel.size(); i++) {
      have.add(baseModel.piece(i));
    }
    // The reference tests membership against the base set only (not updated while appending).
    List<String> added = new ArrayList<>();
    for (int i = 0; i < addModel.size(); i++) {
      if (!have.contains(addModel.piece(i))) {
        added.add(addModel.piece(i));
      }
    }

    Proto.Writer out = new Proto.Writer();
    for (Proto.Field f : baseFields) {
      if (f.number() == 1) {
        out.raw(f);
      }
    }
    for (String piece : added) {
      out.message(1, new Proto.Writer().string(1, piece).floatField(2, 0f));
    }
    List<Proto.Field> rest = new ArrayList<>();
    for (Proto.Field f : baseFields) {
      if (f.number() != 1) {
        rest.add(f);
      }
    }
    // known fields (2..5) by number, unknown ones after them in file order (stable sort)
    rest.sort(Comparator.comparingInt(f -> f.number() <= 5 ? f.number() : Integer.MAX_VALUE));
    for (Proto.Field f : rest) {
      out.raw(f);
    }
    return new Result(out.toByteArray(), baseModel.size(), List.copyOf(added));
  }
}
