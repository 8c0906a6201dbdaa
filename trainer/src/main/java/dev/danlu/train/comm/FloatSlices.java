package dev.danlu.train.comm;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.function.Consumer;
import org.bytedeco.javacpp.FloatPointer;

/**
 * Float arithmetic between direct socket buffers and the caller's data, in small cache-resident
 * tiles.
 *
 * <p>Java 17 has no vectorised add over off-heap memory without Unsafe or incubator modules, but a
 * bulk {@link FloatBuffer#get(int, float[], int, int)} is a plain memcpy and a loop over two {@code
 * float[]} is vectorised by C2. Working through 8 KB tiles keeps those copies in L1, so reducing a
 * received slice costs one pass over the incoming data and one over the destination, instead of
 * first copying the whole slice into a slice-sized scratch array that falls out of cache.
 *
 * <p>Also the layout rule of the {@code ByteBuffer} collectives: floats are little-endian (the wire
 * format, and the native order of x86-64 and AArch64), indexed in floats from index 0 of the buffer
 * regardless of its position and limit, exactly as the {@code float[]} collectives index arrays.
 */
final class FloatSlices {
  /** Floats per tile: 8 KB; 16 KB tiles measured 20 % slower per byte reduced (L1 pressure). */
  static final int TILE = 2048;

  /**
   * Floats per native add. OpenBLAS runs axpy on the calling thread up to 10 000 elements
   * (interface/axpy.c), so the ring's reductions never wake its thread pool, whose threads the
   * model's products own.
   */
  static final int NATIVE_CHUNK = 8192;

  /** OpenBLAS's {@code cblas_saxpy} on pointers, or null when OpenBLAS is not on the classpath. */
  private static final MethodHandle SAXPY = findSaxpy();

  /** Tests and benchmarks switch the native add off to compare both paths. */
  static volatile boolean nativeAddEnabled = true;

  private FloatSlices() {}

  /** A little-endian float view of all of {@code b}, index 0 = byte 0, independent of position. */
  static FloatBuffer floats(ByteBuffer b) {
    return b.duplicate().clear().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
  }

  /** The bytes of floats {@code [off, off+len)} of {@code b} as an independent buffer. */
  static ByteBuffer bytes(ByteBuffer b, int off, int len) {
    ByteBuffer d = b.duplicate().clear();
    d.limit((off + len) * 4).position(off * 4);
    return d;
  }

  /** Floats covered by a strided reduce-scatter or all-gather, from the first chunk's start. */
  static int span(int world, int chunk, int stride) {
    if (stride < chunk) {
      throw new IllegalArgumentException("stride " + stride + " < chunk " + chunk);
    }
    long span = (long) (world - 1) * stride + chunk;
    if (span > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          world + " chunks of " + chunk + " floats at stride " + stride + " exceed 2^31 floats");
    }
    return (int) span;
  }

  /**
   * Validates the chunks of a reduce-scatter-v for {@code world} ranks inside a buffer of {@code
   * capacity} floats: one offset and count per rank, in range, no two non-empty chunks overlapping.
   */
  static void checkV(int world, int[] offsets, int[] counts, long capacity) {
    if (offsets.length != world || counts.length != world) {
      throw new IllegalArgumentException(
          "reduce-scatter-v needs one offset and one count per rank ("
              + world
              + "), got "
              + offsets.length
              + " and "
              + counts.length);
    }
    for (int i = 0; i < world; i++) {
      if (counts[i] < 0 || offsets[i] < 0 || (long) offsets[i] + counts[i] > capacity) {
        throw new IndexOutOfBoundsException(
            "reduce-scatter-v chunk "
                + i
                + " ["
                + offsets[i]
                + ", +"
                + counts[i]
                + ") outside a buffer of "
                + capacity
                + " floats");
      }
      for (int j = 0; j < i; j++) {
        if (counts[i] > 0
            && counts[j] > 0
            && offsets[i] < offsets[j] + counts[j]
            && offsets[j] < offsets[i] + counts[i]) {
          throw new IllegalArgumentException(
              "reduce-scatter-v chunks " + j + " and " + i + " overlap");
        }
      }
    }
  }

  /** Lowest index a non-empty chunk of a reduce-scatter-v covers (0 if all are empty). */
  static int vStart(int[] offsets, int[] counts) {
    int lo = Integer.MAX_VALUE;
    for (int i = 0; i < offsets.length; i++) {
      if (counts[i] > 0) {
        lo = Math.min(lo, offsets[i]);
      }
    }
    return lo == Integer.MAX_VALUE ? 0 : lo;
  }

  /** One past the highest index a chunk of a reduce-scatter-v covers (0 if all are empty). */
  static int vEnd(int[] offsets, int[] counts) {
    int hi = 0;
    for (int i = 0; i < offsets.length; i++) {
      if (counts[i] > 0) {
        hi = Math.max(hi, offsets[i] + counts[i]);
      }
    }
    return hi;
  }

  static void checkRange(ByteBuffer buf, int offset, long count) {
    long capacity = buf.capacity() / 4;
    if (offset < 0 || count < 0 || offset + count > capacity) {
      throw new IndexOutOfBoundsException(
          "collective range ["
              + offset
              + ", "
              + offset
              + "+"
              + count
              + ") outside a buffer of "
              + capacity
              + " floats");
    }
    if (buf.isReadOnly()) {
      throw new IllegalArgumentException("collectives write into the buffer: it is read-only");
    }
  }

  /**
   * {@code dst[dstOff + i] op= src[i]} for i < len; {@code op == null} copies. The destination's
   * tile is copied into {@code b} and back rather than combined in place at an offset: that loop is
   * not vectorised (see {@link #applyAligned}), and the two L1 copies cost less than the scalar
   * arithmetic (0.20 -> 0.12 ns per byte reduced, measured).
   */
  static void combine(
      FloatBuffer src, float[] dst, int dstOff, int len, ReduceOp op, float[] a, float[] b) {
    if (op == null) {
      src.get(0, dst, dstOff, len);
      return;
    }
    for (int k = 0; k < len; k += TILE) {
      int n = Math.min(TILE, len - k);
      src.get(k, a, 0, n);
      System.arraycopy(dst, dstOff + k, b, 0, n);
      applyAligned(a, b, n, op);
      System.arraycopy(b, 0, dst, dstOff + k, n);
    }
  }

  /**
   * Same for a direct destination: both sides go through L1-resident tiles, combined index for
   * index ({@link #applyAligned}), which is what lets C2 vectorise the loop.
   */
  static void combine(
      FloatBuffer src, FloatBuffer dst, int dstOff, int len, ReduceOp op, float[] a, float[] b) {
    for (int k = 0; k < len; k += TILE) {
      int n = Math.min(TILE, len - k);
      src.get(k, a, 0, n);
      if (op != null) {
        dst.get(dstOff + k, b, 0, n);
        applyAligned(a, b, n, op);
        dst.put(dstOff + k, b, 0, n);
      } else {
        dst.put(dstOff + k, a, 0, n);
      }
    }
  }

  /** Whether {@link #addNative} can run here (OpenBLAS loaded, not switched off). */
  static boolean nativeAdd() {
    return SAXPY != null && nativeAddEnabled;
  }

  /**
   * {@code dst[dstOff + i] += src[i]} for i < len, on off-heap memory, through OpenBLAS's {@code
   * saxpy} with alpha 1: its AVX kernel runs at memory speed (0.11 ns per byte reduced into a 64 MB
   * destination, the speed of a plain copy, vs 0.15 for {@link #combine}'s tiles; {@code
   * RedBench}-style measurement in docs/benchmarks.md). {@code 1 * x} is exact and the sum is
   * rounded once, so every result equals the tile path's {@code dst + src} bit for bit (IEEE
   * addition commutes; only which of two NaN payloads survives may differ).
   */
  static void addNative(FloatPointer src, FloatPointer dst, int dstOff, int len) {
    try {
      for (int k = 0; k < len; k += NATIVE_CHUNK) {
        int n = Math.min(NATIVE_CHUNK, len - k);
        SAXPY.invokeExact(n, 1f, src.position(k), 1, dst.position(dstOff + k), 1);
      }
    } catch (Throwable t) {
      throw new IllegalStateException("OpenBLAS saxpy failed in a ring reduction: " + t, t);
    } finally {
      src.position(0);
      dst.position(0);
    }
  }

  /** A pointer to float 0 of a direct buffer (memory shared, nothing copied). */
  static FloatPointer pointer(ByteBuffer direct) {
    return new FloatPointer(floats(direct));
  }

  private static MethodHandle findSaxpy() {
    try {
      Class<?> blas = Class.forName("org.bytedeco.openblas.global.openblas_nolapack");
      MethodHandle h =
          MethodHandles.publicLookup()
              .findStatic(
                  blas,
                  "cblas_saxpy",
                  MethodType.methodType(
                      void.class,
                      int.class,
                      float.class,
                      FloatPointer.class,
                      int.class,
                      FloatPointer.class,
                      int.class));
      // one trial call: loads the native library, or fails here rather than mid-collective
      ByteBuffer x = ByteBuffer.allocateDirect(8).order(ByteOrder.LITTLE_ENDIAN);
      ByteBuffer y = ByteBuffer.allocateDirect(8).order(ByteOrder.LITTLE_ENDIAN);
      x.putFloat(0, 1.5f).putFloat(4, -2f);
      y.putFloat(0, 0.25f).putFloat(4, 3f);
      h.invokeExact(2, 1f, pointer(x), 1, pointer(y), 1);
      return y.getFloat(0) == 1.75f && y.getFloat(4) == 1f ? h : null;
    } catch (Throwable t) {
      return null; // no usable OpenBLAS binding (e.g. a CUDA-only build): the tile path reduces
    }
  }

  /**
   * {@code out[i] = out[i] op in[i]}, the same per-element operation and order as ever. Both arrays
   * are indexed alike on purpose: C2's SuperWord does not vectorise {@code out[off + i] += in[i]}
   * (the two might be one array, with a loop-carried dependence), and that scalar loop measured
   * 1.6x slower per byte reduced (0.22 vs 0.14 ns/B between a direct slice and a 32 MB
   * destination).
   */
  private static void applyAligned(float[] in, float[] out, int n, ReduceOp op) {
    if (op == ReduceOp.SUM) {
      for (int i = 0; i < n; i++) {
        out[i] += in[i];
      }
    } else {
      for (int i = 0; i < n; i++) {
        out[i] = Math.max(out[i], in[i]);
      }
    }
  }

  /**
   * Runs a {@code float[]} collective on floats {@code [offset, offset+count)} of {@code buf}: the
   * fallback for backends without a zero-copy path, and for heap buffers.
   */
  static void viaArray(ByteBuffer buf, int offset, int count, Consumer<float[]> op) {
    checkRange(buf, offset, count);
    FloatBuffer f = floats(buf);
    float[] a = new float[count];
    f.get(offset, a, 0, count);
    op.accept(a);
    f.put(offset, a, 0, count);
  }
}
