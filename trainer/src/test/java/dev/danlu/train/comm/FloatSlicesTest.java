package dev.danlu.train.comm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The ring's reduction kernels against a plain scalar loop, bit for bit: C2 vectorises them, and
 * the ZeRO equivalence tests rely on every element being combined exactly as {@code dst op src}.
 * Lengths cover several tiles with ragged tails and odd destination offsets; values include the
 * cases where a vector max could differ from {@link Math#max} (NaN, signed zeros, infinities).
 */
class FloatSlicesTest {
  private static final float[] SPECIAL = {
    Float.NaN,
    -0.0f,
    0.0f,
    Float.POSITIVE_INFINITY,
    Float.NEGATIVE_INFINITY,
    Float.MIN_VALUE,
    -1e38f
  };

  @Test
  void combineMatchesScalarLoopBitForBit() {
    Random rnd = new Random(42);
    int[] lens = {1, 15, FloatSlices.TILE - 1, FloatSlices.TILE, 2 * FloatSlices.TILE + 37};
    int[] offs = {0, 3, 17};
    // repeated so that C2 compiles (and vectorises) the loops while the test is still checking
    for (int rep = 0; rep < 30; rep++) {
      check(rnd, lens, offs);
    }
  }

  private static void check(Random rnd, int[] lens, int[] offs) {
    for (ReduceOp op : new ReduceOp[] {ReduceOp.SUM, ReduceOp.MAX, null}) {
      for (int len : lens) {
        for (int off : offs) {
          float[] src = values(rnd, len);
          float[] dst = values(rnd, off + len + 5);
          float[] want = dst.clone();
          for (int i = 0; i < len; i++) {
            float d = want[off + i];
            want[off + i] =
                op == null ? src[i] : op == ReduceOp.SUM ? d + src[i] : Math.max(d, src[i]);
          }
          String what = op + " len " + len + " at offset " + off;

          float[] arr = dst.clone();
          float[] a = new float[FloatSlices.TILE];
          float[] b = new float[FloatSlices.TILE];
          FloatSlices.combine(direct(src), arr, off, len, op, a, b);
          assertBits(want, arr, "float[] " + what);

          ByteBuffer out = ByteBuffer.allocateDirect(dst.length * 4).order(ByteOrder.LITTLE_ENDIAN);
          out.asFloatBuffer().put(dst);
          FloatSlices.combine(direct(src), FloatSlices.floats(out), off, len, op, a, b);
          float[] got = new float[dst.length];
          FloatSlices.floats(out).get(got);
          assertBits(want, got, "direct " + what);
        }
      }
    }
  }

  @Test
  void nativeAddMatchesScalarLoopBitForBit() {
    // the CPU build carries OpenBLAS: the ring must be using it (a CUDA-only build falls back)
    assertTrue(FloatSlices.nativeAdd(), "OpenBLAS saxpy did not load");
    Random rnd = new Random(7);
    int c = FloatSlices.NATIVE_CHUNK;
    for (int len : new int[] {1, 31, c - 1, c, c + 1, 3 * c + 517}) {
      for (int off : new int[] {0, 5, 4099}) {
        float[] src = values(rnd, len);
        float[] dst = values(rnd, off + len + 9);
        float[] want = dst.clone();
        for (int i = 0; i < len; i++) {
          want[off + i] = want[off + i] + src[i];
        }
        ByteBuffer in = ByteBuffer.allocateDirect(len * 4).order(ByteOrder.LITTLE_ENDIAN);
        in.asFloatBuffer().put(src);
        ByteBuffer out = ByteBuffer.allocateDirect(dst.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        out.asFloatBuffer().put(dst);
        FloatSlices.addNative(FloatSlices.pointer(in), FloatSlices.pointer(out), off, len);
        float[] got = new float[dst.length];
        FloatSlices.floats(out).get(got);
        assertBits(want, got, "native add of " + len + " at offset " + off);
      }
    }
  }

  private static float[] values(Random rnd, int n) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] =
          rnd.nextInt(8) == 0
              ? SPECIAL[rnd.nextInt(SPECIAL.length)]
              : (float) rnd.nextGaussian() * (float) Math.pow(10, rnd.nextInt(9) - 4);
    }
    return v;
  }

  private static FloatBuffer direct(float[] v) {
    ByteBuffer b = ByteBuffer.allocateDirect(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(v);
    return b.asFloatBuffer();
  }

  private static void assertBits(float[] want, float[] got, String what) {
    for (int i = 0; i < want.length; i++) {
      assertEquals(
          Float.floatToRawIntBits(want[i]),
          Float.floatToRawIntBits(got[i]),
          what + ": element " + i + " is " + got[i] + ", expected " + want[i]);
    }
  }
}
