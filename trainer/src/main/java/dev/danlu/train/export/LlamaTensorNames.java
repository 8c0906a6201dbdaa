package dev.danlu.train.export;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Hugging Face LlamaForCausalLM tensor names to llama.cpp's ({@code gguf-py/gguf/tensor_mapping.py}
 * for MODEL_ARCH.LLAMA), and which weights need the q/k row order of {@code
 * convert_hf_to_gguf.py}'s {@code LlamaModel.permute}.
 */
final class LlamaTensorNames {
  private static final Pattern LAYER = Pattern.compile("model\\.layers\\.(\\d+)\\.(.+)");

  /** A mapped name: the GGUF name, the layer (or -1) and the heads to un-permute over (or 0). */
  record Mapped(String gguf, int layer, int permuteHeads) {}

  private LlamaTensorNames() {}

  /**
   * The GGUF name of an HF tensor, null for tensors llama.cpp does not load (rotary inv_freq
   * buffers); an error naming the tensor for anything else unknown.
   */
  static Mapped map(String hf, int heads, int kvHeads) {
    switch (hf) {
      case "model.embed_tokens.weight":
        return new Mapped("token_embd.weight", -1, 0);
      case "model.norm.weight":
        return new Mapped("output_norm.weight", -1, 0);
      case "lm_head.weight":
        return new Mapped("output.weight", -1, 0);
      default:
        break;
    }
    if (hf.endsWith("rotary_emb.inv_freq")) {
      return null;
    }
    Matcher m = LAYER.matcher(hf);
    if (m.matches()) {
      int layer = Integer.parseInt(m.group(1));
      String blk = "blk." + layer + ".";
      switch (m.group(2)) {
        case "input_layernorm.weight":
          return new Mapped(blk + "attn_norm.weight", layer, 0);
        case "self_attn.q_proj.weight":
          return new Mapped(blk + "attn_q.weight", layer, heads);
        case "self_attn.k_proj.weight":
          return new Mapped(blk + "attn_k.weight", layer, kvHeads);
        case "self_attn.v_proj.weight":
          return new Mapped(blk + "attn_v.weight", layer, 0);
        case "self_attn.o_proj.weight":
          return new Mapped(blk + "attn_output.weight", layer, 0);
        case "post_attention_layernorm.weight":
          return new Mapped(blk + "ffn_norm.weight", layer, 0);
        case "mlp.gate_proj.weight":
          return new Mapped(blk + "ffn_gate.weight", layer, 0);
        case "mlp.up_proj.weight":
          return new Mapped(blk + "ffn_up.weight", layer, 0);
        case "mlp.down_proj.weight":
          return new Mapped(blk + "ffn_down.weight", layer, 0);
        default:
          break;
      }
    }
    throw new IllegalArgumentException(
        "tensor '"
            + hf
            + "' is not part of a LLaMA model (biases and other architectures are not"
            + " exported)");
  }

  /**
   * HF's rotate-half row order to llama.cpp's interleaved pairs, within each head of {@code
   * headDim} rows: output row {@code 2i + h} of a head is input row {@code h * headDim/2 + i}
   * (LlamaModel.permute: reshape(heads, 2, headDim/2, cols).swapaxes(1, 2)). {@code rows} must be
   * whole heads.
   */
  static void permuteRows(float[] src, float[] dst, int rows, int cols, int headDim) {
    int half = headDim / 2;
    for (int h0 = 0; h0 < rows; h0 += headDim) {
      for (int i = 0; i < half; i++) {
        for (int s = 0; s < 2; s++) {
          System.arraycopy(src, (h0 + s * half + i) * cols, dst, (h0 + 2 * i + s) * cols, cols);
        }
      }
    }
  }
}
