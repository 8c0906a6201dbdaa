package dev.danlu.train.eval;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.Llama;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.tensor.Buf;
import java.util.Arrays;

/**
 * Perplexity of a token stream exactly as llama.cpp's {@code llama-perplexity} computes it
 * (tools/perplexity/perplexity.cpp, function {@code perplexity()}), so that danlu's figure and
 * llama.cpp's on a GGUF export of the same model can be compared on the same file:
 *
 * <ol>
 *   <li>the whole text is tokenized once, with BOS in front ({@link #tokens});
 *   <li>it is cut into {@code n_chunk = tokens / ctx} chunks of {@code ctx} tokens (the remainder
 *       is not scored; at least {@code 2 ctx} tokens are required);
 *   <li>the first token of every chunk is replaced by BOS (chunk 0 already starts with it; every
 *       later chunk loses its first real token);
 *   <li>each chunk is run from an empty cache; only the second half is scored: the logits at
 *       positions {@code first = ctx / 2} .. {@code ctx - 2} predict tokens {@code first + 1} ..
 *       {@code ctx - 1}, {@code ctx - 1 - first} tokens per chunk;
 *   <li>{@code nll} is the mean of {@code -log softmax} over all scored tokens, PPL = exp(nll), and
 *       the standard error printed as {@code PPL +/- ppl * sqrt((mean(nll²) - nll²) / (count -
 *       1))}. After each chunk llama.cpp prints the running PPL as {@code [i]x.xxxx,}.
 * </ol>
 *
 * The chunks are independent, so {@link #chunk} scores one and {@link #combine} sums them in chunk
 * order — the Spark job scores chunks on executors and combines on the driver; the result does not
 * depend on how chunks were spread.
 */
public final class ChunkPerplexity {
  /** One scored chunk: the sum and sum of squares of its tokens' negative log-likelihoods. */
  public record Chunk(int index, double nllSum, double nll2Sum, int count)
      implements java.io.Serializable {}

  /** The whole figure: per-chunk running PPL, mean NLL, PPL and its standard error. */
  public record Result(
      double[] runningPpl, double nll, double perplexity, double stderr, long tokens) {
    /** llama.cpp's final line. */
    public String finalLine() {
      return String.format("Final estimate: PPL = %.4f +/- %.5f", perplexity, stderr);
    }

    /** llama.cpp's running printout: {@code [1]x.xxxx,[2]y.yyyy,...}. */
    public String runningLine() {
      StringBuilder sb = new StringBuilder();
      for (int i = 0; i < runningPpl.length; i++) {
        sb.append('[').append(i + 1).append(']').append(String.format("%.4f", runningPpl[i]));
        sb.append(',');
      }
      return sb.toString();
    }
  }

  private ChunkPerplexity() {}

  /** BOS followed by {@code encoded} (llama.cpp tokenizes the whole file with add_bos). */
  public static int[] tokens(int bosId, int[] encoded) {
    int[] t = new int[encoded.length + 1];
    t[0] = bosId;
    System.arraycopy(encoded, 0, t, 1, encoded.length);
    return t;
  }

  /**
   * How many chunks of {@code ctx} tokens {@code tokens} (BOS included) gives; fails as llama.cpp
   * does when there are fewer than {@code 2 ctx} tokens.
   */
  public static int chunkCount(int tokens, int ctx) {
    if (ctx < 4) {
      throw new IllegalArgumentException("--ctx must be at least 4, got " + ctx);
    }
    if (tokens < 2 * ctx) {
      throw new IllegalArgumentException(
          "the text tokenizes to only "
              + tokens
              + " tokens; perplexity with a context of "
              + ctx
              + " needs at least "
              + 2 * ctx
              + " (llama-perplexity's rule): give more text or a smaller --ctx");
    }
    return tokens / ctx;
  }

  /**
   * Scores chunk {@code i} of {@code tokens} (weights and an optional unmerged adapter; {@code
   * state} of shape [1, ctx], reused across calls).
   */
  public static Chunk chunk(
      LlamaWeights w, LoraAdapter ad, LlamaState state, int[] tokens, int ctx, int bosId, int i) {
    if (state.batch != 1 || state.seq != ctx) {
      throw new IllegalArgumentException("state must be [1, " + ctx + "]");
    }
    int start = i * ctx;
    int[] ids = Arrays.copyOfRange(tokens, start, start + ctx);
    ids[0] = bosId;
    Llama.forwardLogits(w, ad, state, Batch.of(1, ctx, ids, null));
    int vocab = w.config().vocabSize();
    int first = ctx / 2;
    Buf logits = Buf.of(state.logits);
    double[] row = new double[vocab];
    double sum = 0;
    double sum2 = 0;
    for (int j = first; j < ctx - 1; j++) {
      logits.read(j * vocab, row, vocab);
      double max = Double.NEGATIVE_INFINITY;
      for (double v : row) {
        max = Math.max(max, v);
      }
      double se = 0;
      for (double v : row) {
        se += Math.exp(v - max);
      }
      double nll = max + Math.log(se) - row[tokens[start + j + 1]];
      sum += nll;
      sum2 += nll * nll;
    }
    return new Chunk(i, sum, sum2, ctx - 1 - first);
  }

  /** Combines scored chunks (in any order; summed in chunk order) into llama.cpp's figures. */
  public static Result combine(Chunk[] chunks) {
    Chunk[] sorted = chunks.clone();
    Arrays.sort(sorted, (a, b) -> Integer.compare(a.index(), b.index()));
    double nll = 0;
    double nll2 = 0;
    long count = 0;
    double[] running = new double[sorted.length];
    for (int k = 0; k < sorted.length; k++) {
      if (sorted[k].index() != k) {
        throw new IllegalArgumentException("chunk " + k + " missing");
      }
      nll += sorted[k].nllSum();
      nll2 += sorted[k].nll2Sum();
      count += sorted[k].count();
      running[k] = Math.exp(nll / count);
    }
    double mean = nll / count;
    double ppl = Math.exp(mean);
    double var = nll2 / count - mean * mean;
    double stderr = var > 0 && count > 1 ? Math.sqrt(var / (count - 1)) * ppl : Double.NaN;
    return new Result(running, mean, ppl, stderr, count);
  }

  /** Every chunk of {@code tokens} on this thread: the small API for other tools and tests. */
  public static Result run(LlamaWeights w, LoraAdapter ad, int[] tokens, int ctx, int bosId) {
    int n = chunkCount(tokens.length, ctx);
    LlamaState s =
        new LlamaState(w.config(), 1, ctx, ad == null ? null : ad.config, false, w.dataType());
    Chunk[] chunks = new Chunk[n];
    for (int i = 0; i < n; i++) {
      chunks[i] = chunk(w, ad, s, tokens, ctx, bosId, i);
    }
    return combine(chunks);
  }
}
