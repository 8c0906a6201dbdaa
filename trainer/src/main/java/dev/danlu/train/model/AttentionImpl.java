package dev.danlu.train.model;

import java.util.Locale;

/**
 * Which attention kernel a {@link LlamaState} runs (training key {@code attn_implementation}, HF's
 * name for the same choice).
 */
public enum AttentionImpl {
  /**
   * {@link #TILED} for sequences longer than {@link #AUTO_TILED_ABOVE} tokens, else {@link #EAGER}.
   */
  AUTO,
  /**
   * The naive path ({@link Attention}): batched products over the full [seq, seq] probabilities,
   * kept per layer for backward; memory grows with seq².
   */
  EAGER,
  /** FlashAttention's tiled online softmax ({@link TiledAttention}); memory grows with seq. */
  TILED;

  /**
   * Above this many tokens AUTO picks TILED. Measured by {@code AttentionBench}
   * (docs/benchmarks.md): at 1K tokens the tiled kernel is faster than the naive one at 7B head
   * shapes and holds no [heads, seq, seq] arrays (4.3 GB per 7B layer at 4K, which the eager path
   * cannot even address in one piece); at 512 it also won, at 256 it lost, and small heads were not
   * measured below 1K, so the threshold stays here.
   */
  public static final int AUTO_TILED_ABOVE = 1024;

  /** Whether a state of {@code seq} tokens runs the tiled kernel. */
  public boolean tiled(int seq) {
    return this == TILED || (this == AUTO && seq > AUTO_TILED_ABOVE);
  }

  /** Parses {@code auto}, {@code eager} or {@code tiled} (case-insensitive). */
  public static AttentionImpl parse(String s) {
    try {
      return valueOf(s.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(
          "attn_implementation '" + s + "' is not one of auto, eager, tiled");
    }
  }
}
