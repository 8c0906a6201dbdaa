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

  /**
   * {@code v} rounded to the buffer's element type, i.e. what {@link #set} followed by {@link #get}
   * returns.
   */
  public double round(double v) {
    return f != null ? (float) v : v;
  }

  /**
   * Copies elements [start, start + len) into {@code dst[0, len)} with one bulk copy: the
   * per-element buffer accesses of {@link #get} cost the fused kernels more than their arithmetic
   * did.
   */
  public void read(int start, double[] dst, int len) {
    if (f != null) {
      float[] tmp = floatScratch(len);
      f.get(offset + start, tmp, 0, len);
      for (int i = 0; i < len; i++) {
        dst[i] = tmp[i];
      }
    } else {
      d.get(offset + start, dst, 0, len);
    }
  }

  /** Stores {@code src[0, len)} at [start, start + len), each rounded as {@link #set} does. */
  public void write(int start, double[] src, int len) {
    if (f != null) {
      float[] tmp = floatScratch(len);
      for (int i = 0; i < len; i++) {
        tmp[i] = (float) src[i];
      }
      f.put(offset + start, tmp, 0, len);
    } else {
      d.put(offset + start, src, 0, len);
    }
  }

  private static final ThreadLocal<float[]> FLOATS = ThreadLocal.withInitial(() -> new float[0]);
  private static final ThreadLocal<double[][]> ROWS =
      ThreadLocal.withInitial(() -> new double[4][0]);

  private static float[] floatScratch(int len) {
    float[] a = FLOATS.get();
    if (a.length < len) {
      a = new float[len];
      FLOATS.set(a);
    }
    return a;
  }

  /**
   * This thread's row scratch number {@code slot} (0-3), at least {@code len} long; the kernels
   * load a row (or a chunk of one) here, work on plain arrays, and store it back.
   */
  public static double[] row(int slot, int len) {
    double[][] rows = ROWS.get();
    if (rows[slot].length < len) {
      rows[slot] = new double[len];
    }
    return rows[slot];
  }

  public void add(int i, double v) {
    if (f != null) {
      f.put(offset + i, f.get(offset + i) + (float) v);
    } else {
      d.put(offset + i, d.get(offset + i) + v);
    }
  }
}
