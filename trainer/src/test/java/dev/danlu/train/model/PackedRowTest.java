package dev.danlu.train.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.tensor.Kernels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Packing: several examples in one row, each attending only to itself with rotary positions
 * restarting at 0, compute exactly what the examples compute apart (up to float summation order):
 * the same logits per token, the same summed loss, the same adapter gradients.
 */
class PackedRowTest {
  private final LlamaConfig c = TinyModels.config(null, 64);
  private final LlamaWeights w = LlamaWeights.random(c, 5, DataType.FLOAT);
  private final LoraConfig lc = TinyModels.lora(0.0);

  /** One example: a prompt of {@code prompt} tokens (labels -100) and a response. */
  private record Example(int[] ids, int[] labels) {}

  private Example example(int length, int prompt, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    int[] ids = new int[length];
    int[] labels = new int[length];
    for (int t = 0; t < length; t++) {
      ids[t] = t == 0 ? 1 : 2 + r.nextInt(c.vocabSize() - 2);
      labels[t] = t < prompt ? -100 : ids[t];
    }
    return new Example(ids, labels);
  }

  /** Rows of examples packed left to right, right-padded to {@code seq} with segment 0. */
  private static Batch packed(List<List<Example>> rows, int seq, boolean segments) {
    int n = rows.size() * seq;
    int[] ids = new int[n];
    int[] mask = new int[n];
    int[] labels = new int[n];
    int[] seg = new int[n];
    Arrays.fill(labels, -100);
    for (int b = 0; b < rows.size(); b++) {
      int at = b * seq;
      int k = 1;
      for (Example e : rows.get(b)) {
        System.arraycopy(e.ids, 0, ids, at, e.ids.length);
        System.arraycopy(e.labels, 0, labels, at, e.labels.length);
        Arrays.fill(mask, at, at + e.ids.length, 1);
        Arrays.fill(seg, at, at + e.ids.length, k++);
        at += e.ids.length;
      }
    }
    return new Batch(
        rows.size(), seq, ids, mask, labels, new long[] {0, 1}, 0, true, segments ? seg : null);
  }

  @Test
  void packedRowsComputeWhatTheirExamplesComputeApart() {
    List<List<Example>> rows =
        List.of(
            List.of(example(5, 2, 1), example(7, 3, 2), example(3, 1, 3)),
            List.of(example(9, 4, 4), example(4, 1, 5)));
    int seq = 16;
    LoraAdapter ad = TinyModels.trainedAdapter(w, lc, 6);

    // packed: one forward/backward of the mean over all label tokens
    Batch b = packed(rows, seq, true);
    LlamaState s = new LlamaState(c, b.batch(), seq, lc, false, DataType.FLOAT);
    double packedLoss = Llama.forward(w, ad, s, b);
    int total = s.tokenCount();
    float[] packedLogits = s.logits.reshape(-1).toFloatVector();
    Llama.backward(w, ad, s, 1.0);
    List<float[]> packedGrads = grads(ad);

    // apart: each example alone, its gradient weighted by its share of the label tokens
    ad.zeroGrad();
    double sumApart = 0;
    int tokensApart = 0;
    float maxLogit = 0;
    float logitError = 0;
    for (int row = 0; row < rows.size(); row++) {
      int at = row * seq;
      for (Example e : rows.get(row)) {
        int len = e.ids.length;
        Batch one = new Batch(1, len, e.ids, null, e.labels, new long[] {row}, 0, true);
        LlamaState s1 = new LlamaState(c, 1, len, lc, false, DataType.FLOAT);
        double loss = Llama.forward(w, ad, s1, one);
        sumApart += loss * s1.tokenCount();
        tokensApart += s1.tokenCount();
        float[] alone = s1.logits.reshape(-1).toFloatVector();
        for (int i = 0; i < alone.length; i++) {
          float p = packedLogits[at * c.vocabSize() + i];
          maxLogit = Math.max(maxLogit, Math.abs(alone[i]));
          logitError = Math.max(logitError, Math.abs(p - alone[i]));
        }
        Llama.backward(w, ad, s1, (double) s1.tokenCount() / total);
        at += len;
      }
    }
    List<float[]> apartGrads = grads(ad);

    assertEquals(tokensApart, total, "the packed row counts every example's label tokens once");
    // Not bitwise: the products run over 16-token rows packed and 3..9-token rows apart, which
    // OpenBLAS blocks differently. Each product sums at most K = 40 float32 terms, moved by at most
    // (K-1)·2^-24·Σ|terms| ≈ 2.3e-6·Σ|terms| when reordered; through 2 layers, attention and the
    // head this stays under 1e-5 of the largest logit, while a token seeing another example's keys
    // moves logits by ~1e-1 (checked below). (Rotary attention depends only on the offset between
    // query and key, so restarting positions changes only the rounding of cos/sin: it makes the
    // packed row round as its examples do; the kernel test below checks the positions themselves.)
    assertTrue(logitError <= 1e-5f * maxLogit, "logits differ by " + logitError);
    assertEquals(sumApart, packedLoss * total, 1e-5 * sumApart, "summed token loss");
    float maxGrad = 0;
    float gradError = 0;
    for (int i = 0; i < packedGrads.size(); i++) {
      float[] p = packedGrads.get(i);
      float[] a = apartGrads.get(i);
      for (int j = 0; j < p.length; j++) {
        maxGrad = Math.max(maxGrad, Math.abs(a[j]));
        gradError = Math.max(gradError, Math.abs(p[j] - a[j]));
      }
    }
    assertTrue(maxGrad > 0);
    // gradients add 5 examples' contributions in another order: the same bound, doubled
    assertTrue(gradError <= 2e-5f * maxGrad, "gradients differ by " + gradError + " of " + maxGrad);

    // without segments the later examples attend to earlier ones: the loss moves far outside
    Batch unsegmented = packed(rows, seq, false);
    double leaky = Llama.forward(w, ad, s, unsegmented);
    assertTrue(
        Math.abs(leaky - packedLoss) > 1e-3 * packedLoss,
        "cross-example attention should change the loss: " + leaky + " vs " + packedLoss);
  }

  @Test
  void positionsRestartAtEachSegment() {
    int[] seg = {1, 1, 1, 2, 2, 0, 5, 5, 6, 0};
    Batch b = new Batch(2, 5, new int[10], null, null, null, 0, false, seg);
    assertArrayEquals(new int[] {0, 1, 2, 0, 1, 0, 0, 1, 0, 0}, b.positionIds());
    assertEquals(null, new Batch(1, 3, new int[3], null, null, null, 0, false).positionIds());
  }

  @Test
  void ropeAtPerTokenPositionsEqualsEachSegmentRotatedFromZero() {
    Rope rope = Rope.forLength(c, 8, true);
    int hd = c.headDim();
    int width = c.numHeads() * hd;
    SplittableRandom r = new SplittableRandom(9);
    INDArray rows = Nd4j.create(DataType.FLOAT, 5, width);
    for (int n = 0; n < 5; n++) {
      for (int i = 0; i < width; i++) {
        rows.putScalar(n, i, r.nextDouble() - 0.5);
      }
    }
    INDArray packedOut = Nd4j.create(DataType.FLOAT, 1, c.numHeads(), 5, hd);
    Kernels.ropePermute(
        rows, 1, 5, c.numHeads(), hd, rope.cos, rope.sin, 0, new int[] {0, 1, 2, 0, 1}, packedOut);
    // each segment alone, rotated from position 0
    int[][] segs = {{0, 3}, {3, 5}};
    for (int[] seg : segs) {
      int len = seg[1] - seg[0];
      INDArray part = rows.get(NDArrayIndex.interval(seg[0], seg[1]), NDArrayIndex.all()).dup();
      INDArray out = Nd4j.create(DataType.FLOAT, 1, c.numHeads(), len, hd);
      Kernels.ropePermute(part, 1, len, c.numHeads(), hd, rope.cos, rope.sin, 0, out);
      // bitwise: every element is the same two products and one sum of the same float operands
      for (int h = 0; h < c.numHeads(); h++) {
        for (int t = 0; t < len; t++) {
          for (int i = 0; i < hd; i++) {
            assertEquals(
                out.getFloat(0, h, t, i), packedOut.getFloat(0, h, seg[0] + t, i), h + " " + t);
          }
        }
      }
    }
    // and the identity placement (pos0 + t) differs for the second segment
    INDArray plain = Nd4j.create(DataType.FLOAT, 1, c.numHeads(), 5, hd);
    Kernels.ropePermute(rows, 1, 5, c.numHeads(), hd, rope.cos, rope.sin, 0, plain);
    assertTrue(plain.sub(packedOut).amaxNumber().doubleValue() > 1e-3);
  }

  private static List<float[]> grads(LoraAdapter ad) {
    List<float[]> out = new ArrayList<>();
    for (LoraAdapter.NamedParam p : ad.trainable()) {
      out.add(p.grad().dup().reshape(-1).toFloatVector());
    }
    return out;
  }
}
