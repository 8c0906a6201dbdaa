package dev.danlu.train.eval;

import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.train.cli.ChatPrompt;
import dev.danlu.train.model.Generator;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.model.Sampler;
import java.io.Serializable;
import java.util.Arrays;

/**
 * Constrained-decoding scores of a prompt, as the reference evaluators compute them from Hugging
 * Face's {@code generate(..., output_scores=True)} with their generation config ({@code
 * do_sample=True, temperature=0.2, repetition_penalty=1.1}, and for constrained decoding {@code
 * top_k=0, top_p=1.0, max_new_tokens=1}; transformers 4.35):
 *
 * <ol>
 *   <li>the next-token logits after the whole prompt;
 *   <li>the logits processors: the repetition penalty over every distinct token of the prompt
 *       (divide a positive logit by 1.1, multiply a negative one);
 *   <li>the logits warpers, which {@code do_sample=True} switches on: temperature (divide by 0.2);
 *       top-k 0 and top-p 1.0 add no warper, so nothing becomes -inf;
 *   <li>{@code scores[0]} is that tensor; per letter X the score is {@code scores[id("X")] +
 *       scores[last id of "：X"]} — the piece {@code ▁X} of {@code encode("X",
 *       add_special_tokens=False)[0]} plus the bare {@code X} that follows a full-width colon — and
 *       the answer is the first argmax over A–D.
 * </ol>
 *
 * With the prefix cache on, the first {@code prefixLen} tokens of a prompt are fed once and kept in
 * the KV cache while the next prompts with the same prefix only feed their own tokens.
 */
public final class ChoiceScorer {
  /** The reference's generation config values that change the scores. */
  public static final double TEMPERATURE = 0.2;

  public static final double REPETITION_PENALTY = 1.1;

  /** The token ids the scores are read at, per letter A..D. */
  public record Choices(int[] bare, int[] afterColon) implements Serializable {
    /** {@code encode("X", add_special_tokens=False)[0]} and {@code encode("：X")[-1]}. */
    public static Choices of(TextTokenizer tok) {
      int[] bare = new int[4];
      int[] colon = new int[4];
      for (int i = 0; i < 4; i++) {
        String x = McPrompt.LETTERS.get(i);
        bare[i] = tok.encode(x)[0];
        int[] c = ChatPrompt.ids("：" + x, tok);
        colon[i] = c[c.length - 1];
      }
      return new Choices(bare, colon);
    }
  }

  /** The four scores and the letter picked. */
  public record Scored(double[] scores, String pred) implements Serializable {}

  private final Generator g;
  private final Choices choices;
  private final double temperature;
  private final boolean prefixCache;
  private int[] cached; // the prefix whose keys/values are in the cache, or null

  /**
   * @param w the model with any adapter merged in
   * @param maxLen the longest prompt this scorer will see (sizes the KV cache)
   */
  public ChoiceScorer(
      LlamaWeights w, Choices choices, double temperature, int maxLen, boolean prefixCache) {
    if (!(temperature > 0) || Double.isInfinite(temperature)) {
      throw new IllegalArgumentException("temperature must be > 0, got " + temperature);
    }
    for (int[] ids : new int[][] {choices.bare(), choices.afterColon()}) {
      for (int id : ids) {
        if (id < 0 || id >= w.config().vocabSize()) {
          throw new IllegalArgumentException(
              "choice token " + id + " outside the model's vocabulary " + w.config().vocabSize());
        }
      }
    }
    this.g = new Generator(w, maxLen);
    this.choices = choices;
    this.temperature = temperature;
    this.prefixCache = prefixCache;
  }

  /** Scores one prompt; {@code prefixLen} tokens are shared with others (ignored without cache). */
  public Scored score(int[] ids, int prefixLen) {
    float[] logits;
    if (prefixCache && prefixLen > 0) {
      if (cached == null
          || cached.length != prefixLen
          || !Arrays.equals(cached, 0, prefixLen, ids, 0, prefixLen)) {
        cached = null;
        g.feed(ids, 0, prefixLen, 0);
        cached = Arrays.copyOf(ids, prefixLen);
      }
      logits = g.feed(ids, prefixLen, ids.length, prefixLen);
    } else {
      cached = null;
      logits = g.feed(ids, 0, ids.length, 0);
    }
    return pick(logits, ids);
  }

  /** The processors and warpers on {@code logits}, then the letters' scores and the argmax. */
  Scored pick(float[] logits, int[] prompt) {
    float[] processed = Sampler.penalize(logits, prompt, prompt.length, REPETITION_PENALTY);
    double[] s = new double[4];
    int best = 0;
    for (int i = 0; i < 4; i++) {
      s[i] =
          processed[choices.bare()[i]] / temperature
              + processed[choices.afterColon()[i]] / temperature;
      if (!Double.isFinite(s[i])) {
        throw new IllegalStateException("score of " + McPrompt.LETTERS.get(i) + " is " + s[i]);
      }
      if (s[i] > s[best]) {
        best = i;
      }
    }
    return new Scored(s, McPrompt.LETTERS.get(best));
  }
}
