package dev.danlu.train.model;

import dev.danlu.train.tensor.Kernels;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Grouped-query causal self-attention on head-major arrays, one 2-D gemm per (batch, head) on
 * contiguous [seq, headDim] blocks (ND4J's batched 3-D matmul was several times slower here). The
 * per-head blocks are views built once in {@link LlamaState} (ND4J view creation is not cheap).
 * Query head h reads key/value head h / (heads / kvHeads), as HF's repeat_kv does.
 */
final class Attention {
  private Attention() {}

  /**
   * probs = causal_softmax(q k^T / sqrt(headDim)) with padded keys masked; out = probs v.
   *
   * @param attentionMask (batch * seq) 1 = real token, null = all real
   */
  static void forward(
      LlamaConfig c,
      int batch,
      int[] attentionMask,
      INDArray[] qh,
      INDArray[] kh,
      INDArray[] vh,
      INDArray[] probs,
      INDArray[] out) {
    int heads = c.numHeads();
    int group = heads / c.numKvHeads();
    int seq = (int) qh[0].size(0);
    double scale = 1.0 / Math.sqrt(c.headDim());
    for (int b = 0; b < batch; b++) {
      for (int h = 0; h < heads; h++) {
        int qi = b * heads + h;
        int ki = b * c.numKvHeads() + h / group;
        INDArray p = probs[qi];
        Nd4j.gemm(qh[qi], kh[ki], p, false, true, scale, 0.0);
        Kernels.causalSoftmax(p, attentionMask, b * seq);
        Nd4j.gemm(p, vh[ki], out[qi], false, false, 1.0, 0.0);
      }
    }
  }

  /** From dOut, the gradients of q, k, v (k and v summed over the heads of their group). */
  static void backward(
      LlamaConfig c,
      int batch,
      INDArray[] qh,
      INDArray[] kh,
      INDArray[] vh,
      INDArray[] probs,
      INDArray[] dOut,
      INDArray dProbs,
      INDArray[] dq,
      INDArray dk,
      INDArray[] dkSlices,
      INDArray dv,
      INDArray[] dvSlices) {
    int heads = c.numHeads();
    int group = heads / c.numKvHeads();
    double scale = 1.0 / Math.sqrt(c.headDim());
    dk.assign(0);
    dv.assign(0);
    for (int b = 0; b < batch; b++) {
      for (int h = 0; h < heads; h++) {
        int qi = b * heads + h;
        int ki = b * c.numKvHeads() + h / group;
        INDArray p = probs[qi];
        INDArray dO = dOut[qi];
        Nd4j.gemm(dO, vh[ki], dProbs, false, true, 1.0, 0.0);
        Nd4j.gemm(p, dO, dvSlices[ki], true, false, 1.0, 1.0);
        Kernels.softmaxBackward(p, dProbs, scale);
        Nd4j.gemm(dProbs, kh[ki], dq[qi], false, false, 1.0, 0.0);
        Nd4j.gemm(dProbs, qh[qi], dkSlices[ki], true, false, 1.0, 1.0);
      }
    }
  }
}
