package dev.danlu.train.export;

/**
 * Which ggml type each tensor of a LLaMA GGUF gets for a file type: llama.cpp's {@code
 * llama_tensor_get_type} and {@code tensor_type_fallback} ({@code src/llama-quant.cpp}) for the
 * types danlu writes, as {@code llama-quantize} applies them without an importance matrix or
 * overrides; f32/f16 as {@code convert_hf_to_gguf.py --outtype} writes them.
 *
 * <ul>
 *   <li>1-D tensors (the norms) stay F32.
 *   <li>output.weight, and token_embd.weight when the model has no output.weight (tied), get Q6_K
 *       (Q8_0 stays Q8_0; Q8_0 when the row is not whole base-type blocks).
 *   <li>_M mixtures: attn_v and ffn_down of the layers {@link #useMoreBits} picks get Q6_K; a
 *       70B-sized model (80 layers) gets Q5_K for a Q4_K attn_v.
 *   <li>A row that is not whole blocks falls back: Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, and to
 *       F16 when even 32 does not divide it. For Q4_0/Q8_0 targets llama-quantize stops with an
 *       error there; danlu falls back to F16 instead (and says so).
 * </ul>
 *
 * <p>llama-quantize counts attn_v and ffn_down tensors in its weight map's order, which is sorted
 * by name ("blk.10." before "blk.2."); {@link #layerRank} reproduces that order, which matters from
 * 11 layers on.
 */
public final class QuantMix {
  private QuantMix() {}

  /** The chosen type and, when a fallback happened, why. */
  public record Choice(GgmlType type, String fallback) {}

  /**
   * @param name the GGUF tensor name
   * @param ne its dims (ne[0] = row length)
   * @param layer the block index for blk.N tensors, else -1
   * @param nLayers block count
   * @param tied true when the file has no output.weight
   */
  public static Choice choose(
      ExportType ft, String name, long[] ne, int layer, int nLayers, boolean tied) {
    boolean weight2d = ne.length >= 2 && name.endsWith("weight") && !name.contains("_norm.weight");
    if (!weight2d || ft == ExportType.F32) {
      return new Choice(GgmlType.F32, null);
    }
    if (ft == ExportType.F16) {
      return new Choice(GgmlType.F16, null);
    }
    GgmlType t = ft.base();
    long nx = ne[0];
    boolean output = name.equals("output.weight");
    boolean embd = name.equals("token_embd.weight");
    if (output || (tied && embd)) {
      if (nx % t.blockSize() != 0) {
        t = GgmlType.Q8_0;
      } else if (t != GgmlType.Q8_0) {
        t = GgmlType.Q6_K;
      }
    } else if (embd) {
      // the file type's base type
    } else if (name.endsWith("attn_v.weight")) {
      if ((ft == ExportType.Q4_K_M || ft == ExportType.Q5_K_M) && useMoreBits(layer, nLayers)) {
        t = GgmlType.Q6_K;
      }
      if (nLayers == 80 && (t == GgmlType.Q3_K || t == GgmlType.Q4_K)) {
        t = GgmlType.Q5_K;
      }
    } else if (name.contains("ffn_down")) {
      if ((ft == ExportType.Q4_K_M || ft == ExportType.Q5_K_M) && useMoreBits(layer, nLayers)) {
        t = GgmlType.Q6_K;
      }
    }
    return fallback(t, nx);
  }

  private static Choice fallback(GgmlType t, long ncols) {
    if (ncols % t.blockSize() == 0) {
      return new Choice(t, null);
    }
    GgmlType f =
        switch (t) {
          case Q4_K -> GgmlType.Q5_0;
          case Q5_K -> GgmlType.Q5_1;
          case Q6_K -> GgmlType.Q8_0;
          default -> GgmlType.F16; // llama-quantize refuses here; danlu keeps the file usable
        };
    if (ncols % f.blockSize() != 0) {
      f = GgmlType.F16;
    }
    return new Choice(
        f,
        "rows of "
            + ncols
            + " are not whole "
            + t.ggmlName()
            + " blocks of "
            + t.blockSize()
            + " -> "
            + f.ggmlName());
  }

  /** llama.cpp's use_more_bits: the first and last eighth and every third layer in between. */
  static boolean useMoreBits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
  }
}
