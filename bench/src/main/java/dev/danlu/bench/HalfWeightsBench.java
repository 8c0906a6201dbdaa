package dev.danlu.bench;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.lora.LoraModule;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.Llama;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.tensor.HalfArrays;
import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;
import org.bytedeco.javacpp.Pointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Memory and time of half-precision frozen weights (torch_dtype) on one LLaMA-7B-shaped decoder
 * layer (hidden 4096, intermediate 11008, 32 heads): the ND4J bytes the layer's weights occupy and
 * the process RSS growth when they are created, for float32, float16 and bfloat16 storage, and a
 * LoRA (r=64, all projections) forward+backward through the layer with each storage, in the same
 * run, plus the time to widen the layer's seven projections into the float32 scratch.
 *
 * <pre>bench/run.sh HalfWeightsBench [seq (128)] [iterations (3)]</pre>
 */
public final class HalfWeightsBench {
  private HalfWeightsBench() {}

  public static void main(String[] args) {
    int seq = args.length > 0 ? Integer.parseInt(args[0]) : 128;
    int iters = args.length > 1 ? Integer.parseInt(args[1]) : 3;
    LlamaConfig c = new LlamaConfig(4096, 11008, 1, 32, 32, 512, 1e-5, 1e4, null, false, seq);
    Nd4j.create(DataType.FLOAT, 1); // load the backend before measuring
    System.out.printf(
        Locale.ROOT, "7B-shaped layer: hidden 4096, intermediate 11008; seq %d%n", seq);
    LlamaWeights[] ws = new LlamaWeights[3];
    DataType[] types = {DataType.HALF, DataType.BFLOAT16, DataType.FLOAT};
    for (int i = 0; i < types.length; i++) {
      long rss0 = Pointer.physicalBytes();
      ws[i] = layerWeights(c, types[i]);
      long rss = Pointer.physicalBytes() - rss0;
      System.out.printf(
          Locale.ROOT,
          "%-8s layer weights: %,d bytes allocated (ND4J buffers), RSS +%,d bytes%n",
          types[i],
          layerBytes(ws[i]),
          rss);
    }
    for (int i = 0; i < 2; i++) {
      INDArray[] dst = new INDArray[LoraModule.values().length];
      for (LoraModule m : LoraModule.values()) {
        dst[m.ordinal()] = Nd4j.create(DataType.FLOAT, LlamaWeights.linearShape(c, m));
      }
      double[] t = new double[iters];
      for (int it = 0; it < iters; it++) {
        long t0 = System.nanoTime();
        for (LoraModule m : LoraModule.values()) {
          HalfArrays.upcast(ws[i].layers()[0].linear(m), dst[m.ordinal()]);
        }
        t[it] = (System.nanoTime() - t0) / 1e6;
      }
      System.out.printf(
          Locale.ROOT,
          "%-8s widen 7 projections to float32: median %.0f ms%n",
          types[i],
          median(t));
    }
    LoraConfig lc = new LoraConfig(64, 128, 0.0, LoraConfig.allTargets(), false, false, 1);
    int[] ids = new int[seq];
    SplittableRandom r = new SplittableRandom(1);
    for (int i = 0; i < seq; i++) {
      ids[i] = r.nextInt(c.vocabSize());
    }
    Batch b = new Batch(1, seq, ids, null, ids, new long[] {0}, 0, true);
    double[] medians = new double[3];
    for (int i = 0; i < 3; i++) {
      LoraAdapter ad = LoraAdapter.init(lc, ws[i]);
      LlamaState s = new LlamaState(c, 1, seq, lc, false, DataType.FLOAT);
      double[] t = new double[iters];
      for (int it = 0; it < iters; it++) {
        long t0 = System.nanoTime();
        Llama.forward(ws[i], ad, s, b);
        Llama.backward(ws[i], ad, s, 1.0);
        t[it] = (System.nanoTime() - t0) / 1e6;
      }
      medians[i] = median(t);
      System.out.printf(
          Locale.ROOT,
          "%-8s forward+backward (LoRA r=64): median %.0f ms; float32 scratch %,d bytes%n",
          types[i],
          medians[i],
          ws[i].scratchBytes());
    }
    System.out.printf(
        Locale.ROOT,
        "time ratio vs float32 storage: float16 %.2f, bfloat16 %.2f%n",
        medians[0] / medians[2],
        medians[1] / medians[2]);
  }

  /** One layer's weights created directly in {@code t} (no float32 copy for half types). */
  static LlamaWeights layerWeights(LlamaConfig c, DataType t) {
    SplittableRandom rnd = new SplittableRandom(7);
    INDArray[] lin = new INDArray[LoraModule.values().length];
    for (LoraModule m : LoraModule.values()) {
      long[] shape = LlamaWeights.linearShape(c, m);
      HalfArrays.FloatReader gauss =
          (off, dst, n) -> {
            for (int i = 0; i < n; i++) {
              dst[i] = (float) (0.02 * rnd.nextGaussian());
            }
          };
      if (HalfArrays.isHalf(t)) {
        lin[m.ordinal()] = HalfArrays.fromFloatChunks(gauss, shape, t);
      } else {
        lin[m.ordinal()] = Nd4j.randn(DataType.FLOAT, shape).muli(0.02);
      }
    }
    INDArray norm = Nd4j.ones(DataType.FLOAT, c.hiddenSize());
    LlamaWeights.Layer layer =
        new LlamaWeights.Layer(
            norm, lin[0], lin[1], lin[2], lin[3], norm.dup(), lin[4], lin[5], lin[6]);
    INDArray embed = Nd4j.randn(DataType.FLOAT, c.vocabSize(), c.hiddenSize()).muli(0.02);
    return new LlamaWeights(c, embed, new LlamaWeights.Layer[] {layer}, norm.dup(), embed.dup());
  }

  static long layerBytes(LlamaWeights w) {
    long n = 0;
    for (LoraModule m : LoraModule.values()) {
      n += HalfArrays.bytes(w.layers()[0].linear(m));
    }
    return n;
  }

  static double median(double[] v) {
    double[] s = v.clone();
    Arrays.sort(s);
    return s[s.length / 2];
  }
}
