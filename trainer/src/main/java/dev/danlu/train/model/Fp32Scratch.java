package dev.danlu.train.model;

import dev.danlu.train.lora.LoraModule;
import dev.danlu.train.tensor.HalfArrays;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * The float32 working copy of frozen half-precision weights: one buffer the size of one decoder
 * layer's seven projections (or of lm_head, whichever is larger), into which a weight is widened
 * the first time it is asked for and then reused until another layer needs the space. So memory is
 * the 16-bit weights plus one layer of float32, and each weight is widened once per pass: forward
 * walks layers up, backward down, and gradient checkpointing's recompute of layer l is followed by
 * layer l's backward, which finds the weights already there.
 *
 * <p>Not thread-safe, and the returned arrays are overwritten by later calls: one thread computes
 * with one {@link LlamaWeights} (each trainer rank loads its own). A second thread fails loudly
 * instead of reading a weight another thread is overwriting.
 */
final class Fp32Scratch {
  private final LlamaWeights w;
  private final long[] moduleOffset = new long[LoraModule.values().length];
  private final INDArray[] moduleView = new INDArray[LoraModule.values().length];
  private final int[] loadedLayer = new int[LoraModule.values().length];
  private INDArray flat; // (max(layer projections, vocab * dim)) float32, allocated on first use
  private INDArray headView;
  private boolean headLoaded;
  private Thread owner;
  private long upcasts;

  Fp32Scratch(LlamaWeights w) {
    this.w = w;
    long off = 0;
    for (LoraModule m : LoraModule.values()) {
      moduleOffset[m.ordinal()] = off;
      long[] s = LlamaWeights.linearShape(w.config(), m);
      off += s[0] * s[1];
      loadedLayer[m.ordinal()] = -1;
    }
  }

  /** The float32 [out, in] weight of projection m in layer l (valid until the next call). */
  INDArray linear(int l, LoraModule m) {
    INDArray stored = w.layers()[l].linear(m);
    if (!HalfArrays.isHalf(stored.dataType())) {
      return stored;
    }
    claim();
    int i = m.ordinal();
    if (loadedLayer[i] != l) {
      if (moduleView[i] == null) {
        moduleView[i] = view(moduleOffset[i], LlamaWeights.linearShape(w.config(), m));
      }
      HalfArrays.upcast(stored, moduleView[i]);
      upcasts++;
      loadedLayer[i] = l;
      headLoaded = false; // the head's span overlaps the modules'
    }
    return moduleView[i];
  }

  /** The float32 (vocab, dim) lm_head (valid until the next call). */
  INDArray lmHead() {
    INDArray stored = w.lmHead();
    if (!HalfArrays.isHalf(stored.dataType())) {
      return stored;
    }
    claim();
    if (!headLoaded) {
      if (headView == null) {
        headView = view(0, stored.shape());
      }
      HalfArrays.upcast(stored, headView);
      upcasts++;
      headLoaded = true;
      java.util.Arrays.fill(loadedLayer, -1);
    }
    return headView;
  }

  /** Bytes of the float32 buffer (0 until a half-precision weight was first used). */
  long bytes() {
    return flat == null ? 0 : HalfArrays.bytes(flat);
  }

  /** How many weights were widened so far (for tests of the reuse). */
  long upcasts() {
    return upcasts;
  }

  private INDArray view(long offset, long[] shape) {
    if (flat == null) {
      long layer = moduleOffset[LoraModule.DOWN.ordinal()];
      long[] down = LlamaWeights.linearShape(w.config(), LoraModule.DOWN);
      layer += down[0] * down[1];
      long head = HalfArrays.isHalf(w.lmHead().dataType()) ? w.lmHead().length() : 0;
      flat = Nd4j.create(DataType.FLOAT, Math.max(layer, head));
    }
    long n = shape[0] * shape[1];
    INDArray v = flat.get(NDArrayIndex.interval(offset, offset + n)).reshape('c', shape);
    if (v.data() != flat.data() && v.data().originalDataBuffer() != flat.data()) {
      throw new IllegalStateException("scratch view is a copy; ND4J changed its view semantics");
    }
    return v;
  }

  private void claim() {
    Thread t = Thread.currentThread();
    if (owner == null) {
      owner = t;
    } else if (owner != t) {
      throw new IllegalStateException(
          "half-precision LlamaWeights are being computed with from thread "
              + t.getName()
              + " but belong to "
              + owner.getName()
              + ": their float32 scratch is per-weights; load one LlamaWeights per thread");
    }
  }
}
