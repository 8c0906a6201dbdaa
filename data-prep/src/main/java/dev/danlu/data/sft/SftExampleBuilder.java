package dev.danlu.data.sft;

import dev.danlu.data.tokenizer.TextTokenizer;
import java.util.Arrays;

/**
 * Turns a record into training ids exactly as Chinese-LLaMA-Alpaca-2's {@code
 * scripts/training/build_dataset.py} does (docs/sft.md):
 *
 * <pre>
 * prompt    = [bos] + encode(Alpaca2Template.prompt(instruction(+"\n"+input)))
 * target    = encode(output) + [eos]
 * input_ids = (prompt + target)[:L]
 * labels    = ([-100] * len(prompt) + target)[:L]
 * </pre>
 *
 * {@code encode} is {@link TextTokenizer#encode} (spm_encode's ids, with SentencePiece's dummy
 * prefix, no BOS/EOS). An example whose labels are all -100 after the cut (the prompt alone fills
 * L) teaches nothing and makes the mean loss 0/0: it is dropped and counted. Thread-safe.
 */
public final class SftExampleBuilder {
  /**
   * The outcome for one record.
   *
   * @param example the example, or null if it was dropped as fully masked
   * @param promptTokens tokens of the prompt before the cut (BOS included)
   * @param targetTokens tokens of the target before the cut (EOS included)
   */
  public record Built(SftExamples.Example example, int promptTokens, int targetTokens) {
    public boolean fullyMasked() {
      return example == null;
    }

    /** True if the cut removed any prompt or target token (EOS included). */
    public boolean truncated(int maxSeqLength) {
      return promptTokens + targetTokens > maxSeqLength;
    }
  }

  private final TextTokenizer tokenizer;
  private final int maxSeqLength;

  public SftExampleBuilder(TextTokenizer tokenizer, int maxSeqLength) {
    if (maxSeqLength <= 0) {
      throw new IllegalArgumentException("max_seq_length must be positive: " + maxSeqLength);
    }
    this.tokenizer = tokenizer;
    this.maxSeqLength = maxSeqLength;
  }

  public int maxSeqLength() {
    return maxSeqLength;
  }

  public Built build(SftRecord r) {
    String prompt = Alpaca2Template.prompt(Alpaca2Template.instruction(r.instruction(), r.input()));
    int[] p = tokenizer.encode(prompt);
    int[] t = tokenizer.encode(r.output());
    int promptLen = p.length + 1;
    int targetLen = t.length + 1;
    if (promptLen >= maxSeqLength) {
      return new Built(null, promptLen, targetLen);
    }
    int n = Math.min(maxSeqLength, promptLen + targetLen);
    int[] ids = new int[n];
    int[] labels = new int[n];
    ids[0] = tokenizer.bosId();
    System.arraycopy(p, 0, ids, 1, p.length);
    Arrays.fill(labels, 0, promptLen, SftExamples.IGNORE_INDEX);
    for (int i = promptLen; i < n; i++) {
      int k = i - promptLen;
      int id = k < t.length ? t[k] : tokenizer.eosId();
      ids[i] = id;
      labels[i] = id;
    }
    return new Built(new SftExamples.Example(ids, labels), promptLen, targetLen);
  }
}
