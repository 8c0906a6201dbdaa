package dev.danlu.train.tensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.util.Arrays;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.concurrency.AffinityManager;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * ND4J arrays stored in 16 bits (HALF = IEEE binary16, BFLOAT16), for frozen weights: built from
 * float32 with round-to-nearest-even (bit-identical to torch's {@code .half()} / {@code
 * .bfloat16()}, see {@link HalfFloats}) or straight from a checkpoint's 16-bit bytes, and widened
 * back to float32 for the math.
 *
 * <p>The 16-bit bits are written through the array's host buffer. ND4J's {@code createBuffer(
 * ByteBuffer, BFLOAT16, n)} decodes wrongly in 1.0.0-M2.1 (and crashes on heap buffers), and a cast
 * from float32 would need a full float32 copy of the tensor; writing the host buffer and tagging it
 * as the current copy works on both backends (on CUDA the next device use uploads it).
 */
public final class HalfArrays {
  private static final int CHUNK = 1 << 20;

  private HalfArrays() {}

  /** Whether {@code t} is one of the 16-bit float dtypes handled here. */
  public static boolean isHalf(DataType t) {
    return t == DataType.HALF || t == DataType.BFLOAT16;
  }

  /** {@code v} rounded to the nearest value of {@code t} (nearest-even), as a float. */
  public static float round(float v, DataType t) {
    return switch (t) {
      case HALF -> HalfFloats.f16ToFloat(HalfFloats.floatToF16(v));
      case BFLOAT16 -> HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(v));
      case FLOAT, DOUBLE -> v;
      default -> throw new IllegalArgumentException("not a float dtype: " + t);
    };
  }

  /** {@code v} rounded in place to {@code t}; returns {@code v}. */
  public static float[] round(float[] v, DataType t) {
    if (isHalf(t)) {
      for (int i = 0; i < v.length; i++) {
        v[i] = round(v[i], t);
      }
    }
    return v;
  }

  /** The 16-bit pattern of {@code v} in {@code t} (HALF or BFLOAT16), nearest-even. */
  public static short bits(float v, DataType t) {
    return t == DataType.HALF ? HalfFloats.floatToF16(v) : HalfFloats.floatToBf16(v);
  }

  /** The float value of a 16-bit pattern of {@code t}. */
  public static float value(short bits, DataType t) {
    return t == DataType.HALF ? HalfFloats.f16ToFloat(bits) : HalfFloats.bf16ToFloat(bits);
  }

  /** A c-order array of {@code t} (any float dtype) holding {@code data}, rounded nearest-even. */
  public static INDArray fromFloats(float[] data, long[] shape, DataType t) {
    if (!isHalf(t)) {
      INDArray a = Nd4j.create(data, shape, DataType.FLOAT);
      return t == DataType.FLOAT ? a : a.castTo(t).dup('c');
    }
    INDArray a = Nd4j.create(t, shape);
    check(a, data.length);
    ShortBuffer dst = hostShorts(a);
    for (int i = 0; i < data.length; i++) {
      dst.put(i, bits(data[i], t));
    }
    return written(a);
  }

  /**
   * A c-order array of 16-bit dtype {@code t} whose bits are the little-endian 16-bit values in
   * {@code le} (position to limit): the checkpoint's own half-precision bytes, copied unchanged.
   */
  public static INDArray fromBits(ByteBuffer le, long[] shape, DataType t) {
    requireHalf(t);
    INDArray a = Nd4j.create(t, shape);
    ShortBuffer src = le.duplicate().order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
    check(a, src.remaining());
    hostShorts(a).put(src);
    return written(a);
  }

  /** Reads {@code count} float32 values of a tensor starting at element {@code offset}. */
  public interface FloatReader {
    void read(long offset, float[] dst, int count);
  }

  /**
   * A 16-bit array of {@code t} filled from {@code reader} a chunk at a time, so converting a
   * float32 checkpoint never holds more than one chunk of float32 on the heap.
   */
  public static INDArray fromFloatChunks(FloatReader reader, long[] shape, DataType t) {
    requireHalf(t);
    INDArray a = Nd4j.create(t, shape);
    long n = a.length();
    ShortBuffer dst = hostShorts(a);
    float[] chunk = new float[(int) Math.min(n, CHUNK)];
    for (long off = 0; off < n; off += chunk.length) {
      int c = (int) Math.min(chunk.length, n - off);
      reader.read(off, chunk, c);
      for (int i = 0; i < c; i++) {
        dst.put((int) (off + i), bits(chunk[i], t));
      }
    }
    return written(a);
  }

  /**
   * dst (float32, same shape and length) = src widened, exactly: every binary16 and bfloat16 value
   * is a float32. ND4J's typed assign does it natively (on the device under CUDA), except binary16
   * on the CPU backend, where a parallel Java table lookup measured 1.25-1.4x faster than the
   * assign (for bfloat16, a plain shift, the assign is faster; docs/precision.md).
   */
  public static void upcast(INDArray src, INDArray dst) {
    if (src.length() != dst.length() || dst.dataType() != DataType.FLOAT) {
      throw new IllegalArgumentException(
          "upcast of "
              + src.dataType()
              + Arrays.toString(src.shape())
              + " into "
              + dst.dataType()
              + Arrays.toString(dst.shape()));
    }
    if (src.dataType() == DataType.HALF && onCpu() && contiguous(src) && contiguous(dst)) {
      upcastF16Java(src, dst);
    } else {
      upcastNd4j(src, dst);
    }
  }

  /** The generic widening: ND4J's typed assign. */
  static void upcastNd4j(INDArray src, INDArray dst) {
    dst.assign(src);
  }

  /** binary16 -> float32 through a 64K-entry table, in parallel 64K-element blocks. */
  static void upcastF16Java(INDArray src, INDArray dst) {
    ShortBuffer s = hostShorts(src);
    Nd4j.getAffinityManager().ensureLocation(dst, AffinityManager.Location.HOST);
    FloatBuffer d = dst.data().asNio().order(ByteOrder.nativeOrder()).asFloatBuffer();
    int so = Math.toIntExact(src.offset());
    int dOff = Math.toIntExact(dst.offset());
    int n = Math.toIntExact(src.length());
    int blocks = (n + BLOCK - 1) / BLOCK;
    Par.rows(
        blocks,
        BLOCK,
        blk -> {
          int end = Math.min(n, (blk + 1) * BLOCK);
          for (int i = blk * BLOCK; i < end; i++) {
            d.put(dOff + i, F16_TABLE[s.get(so + i) & 0xffff]);
          }
        });
    written(dst);
  }

  private static final int BLOCK = 1 << 16;
  private static final float[] F16_TABLE = new float[1 << 16];

  static {
    for (int i = 0; i < F16_TABLE.length; i++) {
      F16_TABLE[i] = HalfFloats.f16ToFloat(i);
    }
  }

  private static volatile Boolean cpu;

  private static boolean onCpu() {
    Boolean c = cpu;
    if (c == null) {
      c = Backend.loaded() == Backend.Kind.CPU;
      cpu = c;
    }
    return c;
  }

  private static boolean contiguous(INDArray a) {
    return a.ordering() == 'c' && (a.length() <= 1 || a.elementWiseStride() == 1);
  }

  /**
   * out[n, :] = table[ids[n], :] widened to out's dtype, for a 16-bit (vocab, dim) table: reads
   * only the rows used, so a half-precision embedding needs no float32 copy.
   */
  public static void gatherRows(int[] ids, INDArray table, INDArray out) {
    DataType t = table.dataType();
    requireHalf(t);
    if (table.ordering() != 'c' || table.offset() != 0 || table.rank() != 2) {
      throw new IllegalArgumentException("embedding table must be a fresh c-order matrix");
    }
    int vocab = (int) table.size(0);
    int dim = (int) table.size(1);
    ShortBuffer src = hostShorts(table);
    Buf o = Buf.of(out);
    for (int n = 0; n < ids.length; n++) {
      int id = ids[n];
      if (id < 0 || id >= vocab) {
        throw new IllegalArgumentException(
            "token id " + id + " at position " + n + " is outside the vocabulary 0.." + vocab);
      }
      for (int i = 0; i < dim; i++) {
        o.set(n * dim + i, value(src.get(id * dim + i), t));
      }
    }
  }

  /** Bytes of storage an array's buffer holds (its length times its element size). */
  public static long bytes(INDArray a) {
    return a.data().length() * a.data().getElementSize();
  }

  private static ShortBuffer hostShorts(INDArray a) {
    Nd4j.getAffinityManager().ensureLocation(a, AffinityManager.Location.HOST);
    ByteBuffer b = a.data().asNio().order(ByteOrder.nativeOrder());
    return b.asShortBuffer();
  }

  private static INDArray written(INDArray a) {
    Nd4j.getAffinityManager().tagLocation(a, AffinityManager.Location.HOST);
    return a;
  }

  private static void check(INDArray a, long n) {
    if (a.length() != n) {
      throw new IllegalArgumentException(
          n + " values do not fill shape " + Arrays.toString(a.shape()) + " (" + a.length() + ")");
    }
  }

  private static void requireHalf(DataType t) {
    if (!isHalf(t)) {
      throw new IllegalArgumentException("expected HALF or BFLOAT16, not " + t);
    }
  }
}
