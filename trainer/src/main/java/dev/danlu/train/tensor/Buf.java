package dev.danlu.train.tensor;

import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Direct element access to a contiguous c-order ND4J array, for the fused kernels in {@link
 * Kernels}. One class serves float32 (training, inference) and float64 (the finite-difference
 * tests) so that every kernel is written once: the dtype branch is perfectly predictable and the
 * JIT hoists it. Arithmetic in the kernels is done in double and rounded on store.
 *
 * <p>ND4J's own element-wise ops allocate temporaries and run one op per pass; these loops read
 * each element once per fused step, which is what decides step time on the CPU backend
 * (REFERENCE.md: "elementwise and small batched ops decide the step time").
 */
public final class Buf {
  private final FloatBuffer f;
  private final DoubleBuffer d;
  private final int offset;
  private final int length;

  private Buf(FloatBuffer f, DoubleBuffer d, int offset, int length) {
    this.f = f;
    this.d = d;
    this.offset = offset;
    this.length = length;
  }

  /** Wraps {@code a}, which must be c-order and contiguous (a fresh array or a row-block view). */
  public static Buf of(INDArray a) {
    if (a.length() > 0 && (a.ordering() != 'c' || a.elementWiseStride() != 1)) {
      throw new IllegalArgumentException(
          "kernel input must be a contiguous c-order array, got shape "
              + java.util.Arrays.toString(a.shape())
              + " order "
              + a.ordering()
              + " ews "
              + a.elementWiseStride());
    }
    if (a.length() > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("array too large for a kernel: " + a.length());
    }
    DataType t = a.dataType();
    int off = Math.toIntExact(a.offset());
    if (t == DataType.FLOAT) {
      FloatBuffer fb = a.data().asNio().order(ByteOrder.nativeOrder()).asFloatBuffer();
      return new Buf(fb, null, off, (int) a.length());
    }
    if (t == DataType.DOUBLE) {
      DoubleBuffer db = a.data().asNio().order(ByteOrder.nativeOrder()).asDoubleBuffer();
      return new Buf(null, db, off, (int) a.length());
    }
    throw new IllegalArgumentException("kernels run in FLOAT or DOUBLE, not " + t);
  }

  public int length() {
    return length;
  }

  public double get(int i) {
    return f != null ? f.get(offset + i) : d.get(offset + i);
  }

  public void set(int i, double v) {
    if (f != null) {
      f.put(offset + i, (float) v);
    } else {
      d.put(offset + i, v);
    }
  }

  public void add(int i, double v) {
    if (f != null) {
      f.put(offset + i, f.get(offset + i) + (float) v);
    } else {
      d.put(offset + i, d.get(offset + i) + v);
    }
  }
}
