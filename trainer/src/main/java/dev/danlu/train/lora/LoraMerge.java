package dev.danlu.train.lora;

import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.tensor.HalfArrays;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * In-memory merge for inference: W' = W + scaling * B A on targeted projections, embed_tokens /
 * lm_head replaced by the adapter's trained copies (PEFT's merge_and_unload). The base arrays are
 * not modified. (Merging to disk, streamed layer by layer, is {@code danlu merge}.)
 */
public final class LoraMerge {
  private LoraMerge() {}

  /**
   * W + delta in W's storage dtype: half-precision weights get the float32 sum rounded once to
   * nearest-even (torch adds in the weight's dtype, which can differ by one rounding of delta).
   */
  private static INDArray merged(INDArray w, INDArray delta) {
    if (!HalfArrays.isHalf(w.dataType())) {
      return w.add(delta);
    }
    INDArray sum = w.castTo(delta.dataType()).addi(delta);
    return LlamaWeights.fromFloats(sum.reshape(-1).toFloatVector(), w.shape(), w.dataType());
  }

  public static LlamaWeights merge(LlamaWeights base, LoraAdapter ad) {
    LlamaConfig c = base.config();
    LlamaWeights.Layer[] layers = new LlamaWeights.Layer[c.numLayers()];
    for (int l = 0; l < layers.length; l++) {
      LlamaWeights.Layer b = base.layers()[l];
      INDArray[] lin = new INDArray[LoraModule.values().length];
      for (LoraModule m : LoraModule.values()) {
        INDArray w = b.linear(m);
        lin[m.ordinal()] = ad.targets(m) ? merged(w, ad.deltaWeight(l, m)) : w;
      }
      layers[l] =
          new LlamaWeights.Layer(
              b.inputNorm(),
              lin[0],
              lin[1],
              lin[2],
              lin[3],
              b.postAttentionNorm(),
              lin[4],
              lin[5],
              lin[6]);
    }
    INDArray embed = ad.embedTokens != null ? ad.embedTokens : base.embedTokens();
    INDArray head = ad.lmHead != null ? ad.lmHead : base.lmHead();
    if (embed.size(0) != head.size(0)) {
      throw new IllegalArgumentException(
          "after merging, embed_tokens has "
              + embed.size(0)
              + " rows but lm_head "
              + head.size(0)
              + "; an adapter that resizes the vocabulary must carry both");
    }
    boolean tied = embed == head;
    LlamaConfig merged =
        new LlamaConfig(
            c.hiddenSize(),
            c.intermediateSize(),
            c.numLayers(),
            c.numHeads(),
            c.numKvHeads(),
            (int) embed.size(0),
            c.rmsNormEps(),
            c.ropeTheta(),
            c.ropeScaling(),
            tied,
            c.maxPositionEmbeddings(),
            c.ntk());
    return new LlamaWeights(merged, embed, layers, base.norm(), head);
  }
}
