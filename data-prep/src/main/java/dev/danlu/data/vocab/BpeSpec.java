package dev.danlu.data.vocab;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;

/**
 * The training options of {@code danlu vocab train}, named and defaulted as {@code spm_train}'s
 * TrainerSpec/NormalizerSpec fields (sentencepiece 0.1.97), for {@code --model_type=bpe}.
 *
 * @param vocabSize pieces in the model, meta pieces included (spm's hard_vocab_limit: exactly this)
 * @param characterCoverage fraction of character occurrences the alphabet must cover
 * @param maxSentenceLength input lines longer than this many bytes are skipped
 * @param maxPieceLength spm's max_sentencepiece_length, in characters
 * @param inputSentenceSize when positive, train on this many lines chosen by {@code seed}
 * @param seed keys the line sample: a line is kept by the hash of (seed, file, line number)
 * @param normalization spm's normalization_rule_name: nmt_nfkc (spm_train's default), nfkc or
 *     identity (the rule of the LLaMA tokenizers), see {@link NormalizationRules}
 */
public record BpeSpec(
    int vocabSize,
    float characterCoverage,
    int maxSentenceLength,
    int maxPieceLength,
    boolean splitByUnicodeScript,
    boolean splitByNumber,
    boolean splitDigits,
    boolean byteFallback,
    List<String> userDefinedSymbols,
    boolean addDummyPrefix,
    boolean removeExtraWhitespaces,
    long inputSentenceSize,
    long seed,
    String normalization)
    implements Serializable {

  /** Word positions are packed in 16 bits per index, as in spm's trainer. */
  public static final int MAX_SENTENCE_LENGTH_LIMIT = 32000;

  public BpeSpec {
    userDefinedSymbols = List.copyOf(userDefinedSymbols);
    if (vocabSize <= 0) {
      throw new IllegalArgumentException("--vocab-size must be positive, got " + vocabSize);
    }
    if (!(characterCoverage > 0 && characterCoverage <= 1)) {
      throw new IllegalArgumentException(
          "--character-coverage must be in (0, 1], got " + characterCoverage);
    }
    if (maxSentenceLength <= 0 || maxSentenceLength > MAX_SENTENCE_LENGTH_LIMIT) {
      throw new IllegalArgumentException(
          "--max-sentence-length must be in [1, "
              + MAX_SENTENCE_LENGTH_LIMIT
              + "], got "
              + maxSentenceLength);
    }
    if (maxPieceLength <= 0 || maxPieceLength > 512) {
      throw new IllegalArgumentException(
          "--max-piece-length must be in [1, 512], got " + maxPieceLength);
    }
    if (!NormalizationRules.NAMES.contains(normalization)) {
      throw new IllegalArgumentException(
          "--normalization-rule-name "
              + normalization
              + " is not supported; use one of "
              + String.join(", ", NormalizationRules.NAMES));
    }
    for (String s : userDefinedSymbols) {
      if (s.isEmpty()) {
        throw new IllegalArgumentException("--user-defined-symbols: an empty symbol");
      }
    }
  }

  /** spm_train's defaults for {@code --model_type=bpe} (normalization rule nmt_nfkc). */
  public static BpeSpec defaults(int vocabSize) {
    return new BpeSpec(
        vocabSize,
        0.9995f,
        4192,
        16,
        true,
        true,
        false,
        false,
        List.of(),
        true,
        true,
        0,
        0,
        "nmt_nfkc");
  }

  public BpeSpec withNormalization(String rule) {
    return new BpeSpec(
        vocabSize,
        characterCoverage,
        maxSentenceLength,
        maxPieceLength,
        splitByUnicodeScript,
        splitByNumber,
        splitDigits,
        byteFallback,
        userDefinedSymbols,
        addDummyPrefix,
        removeExtraWhitespaces,
        inputSentenceSize,
        seed,
        rule);
  }

  public BpeSpec withCharacterCoverage(float c) {
    return new BpeSpec(
        vocabSize,
        c,
        maxSentenceLength,
        maxPieceLength,
        splitByUnicodeScript,
        splitByNumber,
        splitDigits,
        byteFallback,
        userDefinedSymbols,
        addDummyPrefix,
        removeExtraWhitespaces,
        inputSentenceSize,
        seed,
        normalization);
  }

  public BpeSpec withVocabSize(int n) {
    return new BpeSpec(
        n,
        characterCoverage,
        maxSentenceLength,
        maxPieceLength,
        splitByUnicodeScript,
        splitByNumber,
        splitDigits,
        byteFallback,
        userDefinedSymbols,
        addDummyPrefix,
        removeExtraWhitespaces,
        inputSentenceSize,
        seed,
        normalization);
  }

  /** The meta pieces in id order: unk 0, bos 1, eos 2, user-defined symbols, byte pieces. */
  public List<String> metaPieces() {
    List<String> m = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
    m.addAll(userDefinedSymbols);
    if (byteFallback) {
      for (int b = 0; b < 256; b++) {
        m.add(String.format("<0x%02X>", b));
      }
    }
    return m;
  }
}
