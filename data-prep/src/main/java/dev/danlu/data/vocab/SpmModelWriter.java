package dev.danlu.data.vocab;

import java.util.List;

/**
 * Serializes a trained BPE model as a SentencePiece {@code ModelProto}: the pieces, a TrainerSpec
 * with the options it was trained with (model_type BPE, special ids and pieces as spm_train writes
 * them) and the NormalizerSpec (rule name, precompiled charsmap, whitespace flags), so spm_encode,
 * python sentencepiece, DJL and danlu's own loader read it as a normal model.
 */
public final class SpmModelWriter {
  private SpmModelWriter() {}

  /**
   * @param charsmap the compiled rules of {@code spec.normalization()} the corpus was normalized
   *     with ({@link Charsmap#forRule}), stored as the NormalizerSpec's precompiled_charsmap
   */
  public static byte[] write(List<BpeTrainer.Piece> pieces, BpeSpec spec, byte[] charsmap) {
    Proto.Writer model = new Proto.Writer();
    for (BpeTrainer.Piece p : pieces) {
      Proto.Writer sp = new Proto.Writer().string(1, p.piece()).floatField(2, p.score());
      if (p.type() != 1) {
        sp.varint(3, p.type());
      }
      model.message(1, sp);
    }
    Proto.Writer trainer =
        new Proto.Writer()
            .varint(3, 2) // model_type BPE
            .varint(4, spec.vocabSize())
            .floatField(10, spec.characterCoverage())
            .varint(11, spec.inputSentenceSize())
            .varint(18, spec.maxSentenceLength())
            .varint(20, spec.maxPieceLength())
            .bool(21, spec.splitByUnicodeScript())
            .bool(22, true) // split_by_whitespace
            .bool(23, spec.splitByNumber())
            .bool(24, false) // treat_whitespace_as_suffix
            .bool(25, spec.splitDigits())
            .bool(26, false); // allow_whitespace_only_pieces
    for (String u : spec.userDefinedSymbols()) {
      trainer.string(31, u);
    }
    trainer
        .bool(33, true) // hard_vocab_limit
        .bool(35, spec.byteFallback())
        .varint(40, 0)
        .varint(41, 1)
        .varint(42, 2)
        .varint(43, -1L)
        .string(44, " \u2047 ")
        .string(45, "<unk>")
        .string(46, "<s>")
        .string(47, "</s>")
        .string(48, "<pad>");
    model.message(2, trainer);
    Proto.Writer normalizer = new Proto.Writer().string(1, spec.normalization());
    if (charsmap.length > 0) {
      normalizer.bytes(2, charsmap);
    }
    normalizer
        .bool(3, spec.addDummyPrefix())
        .bool(4, spec.removeExtraWhitespaces())
        .bool(5, true); // escape_whitespaces
    model.message(3, normalizer);
    return model.toByteArray();
  }
}
