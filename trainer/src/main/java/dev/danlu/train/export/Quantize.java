package dev.danlu.train.export;

import dev.danlu.train.tensor.HalfFloats;

/**
 * ggml's reference quantizers ({@code ggml/src/ggml-quants.c}: {@code quantize_row_q8_0_ref},
 * {@code q4_0_ref}, {@code q5_0_ref}, {@code q5_1_ref}; the k-quants are in {@link KQuants}),
 * ported so that the bytes are the same as llama.cpp's {@code llama-quantize} writes without an
 * importance matrix (which calls exactly these functions).
 *
 * <p>Byte equality holds because every step is float32 arithmetic in the C source's order: Java
 * float operations are IEEE binary32 with round-to-nearest-even, as C's on x86-64 SSE (no excess
 * precision), and ggml's quantizers are built without fused multiply-add (llama.cpp's ggml-base
 * library contains none). C's {@code roundf} (half away from zero), the float-to-int truncations
 * and the fp16 conversion (round to nearest even) are reproduced exactly. {@code
 * QuantizeOracleTest} compares the bytes with the real ggml library.
 */
public final class Quantize {
  private Quantize() {}

  /**
   * Writes {@code n} floats of {@code x} from {@code xOff} (a whole number of rows) as type {@code
   * t} into {@code out} from {@code outOff}; returns the bytes written.
   */
  public static int quantize(GgmlType t, float[] x, int xOff, int n, byte[] out, int outOff) {
    if (n % t.blockSize() != 0) {
      throw new IllegalArgumentException(n + " elements are not whole " + t.ggmlName() + " blocks");
    }
    int nb = n / t.blockSize();
    switch (t) {
      case F32 ->
          java.nio.ByteBuffer.wrap(out, outOff, 4 * n)
              .order(java.nio.ByteOrder.LITTLE_ENDIAN)
              .asFloatBuffer()
              .put(x, xOff, n);
      case F16 -> {
        for (int i = 0; i < n; i++) {
          putI16(out, outOff + 2 * i, HalfFloats.floatToF16(x[xOff + i]));
        }
      }
      case Q8_0 -> {
        for (int i = 0; i < nb; i++) {
          q8_0(x, xOff + 32 * i, out, outOff + 34 * i);
        }
      }
      case Q4_0 -> {
        for (int i = 0; i < nb; i++) {
          q4_0(x, xOff + 32 * i, out, outOff + 18 * i);
        }
      }
      case Q5_0 -> {
        for (int i = 0; i < nb; i++) {
          q5_0(x, xOff + 32 * i, out, outOff + 22 * i);
        }
      }
      case Q5_1 -> {
        for (int i = 0; i < nb; i++) {
          q5_1(x, xOff + 32 * i, out, outOff + 24 * i);
        }
      }
      case Q4_K, Q5_K, Q6_K -> {
        KQuants k = new KQuants();
        for (int i = 0; i < nb; i++) {
          int src = xOff + 256 * i;
          int dst = outOff + t.typeSize() * i;
          switch (t) {
            case Q4_K -> k.q4K(x, src, out, dst);
            case Q5_K -> k.q5K(x, src, out, dst);
            default -> k.q6K(x, src, out, dst);
          }
        }
      }
      default -> throw new IllegalArgumentException("danlu does not write " + t.ggmlName());
    }
    return (int) ((long) nb * t.typeSize());
  }

  // block_q8_0: fp16 d, int8 qs[32]
  private static void q8_0(float[] x, int xo, byte[] y, int yo) {
    float amax = 0f;
    for (int j = 0; j < 32; j++) {
      amax = Math.max(amax, Math.abs(x[xo + j]));
    }
    float d = amax / 127;
    float id = d != 0f ? 1.0f / d : 0.0f;
    putI16(y, yo, HalfFloats.floatToF16(d));
    for (int j = 0; j < 32; j++) {
      y[yo + 2 + j] = (byte) roundf(x[xo + j] * id);
    }
  }

  // block_q4_0: fp16 d, uint8 qs[16] (element j in the low nibble, j + 16 in the high one)
  private static void q4_0(float[] x, int xo, byte[] y, int yo) {
    float amax = 0f;
    float max = 0f;
    for (int j = 0; j < 32; j++) {
      float v = x[xo + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    float d = max / -8;
    float id = d != 0f ? 1.0f / d : 0.0f;
    putI16(y, yo, HalfFloats.floatToF16(d));
    for (int j = 0; j < 16; j++) {
      float x0 = x[xo + j] * id;
      float x1 = x[xo + 16 + j] * id;
      int xi0 = Math.min(15, (byte) (int) (x0 + 8.5f));
      int xi1 = Math.min(15, (byte) (int) (x1 + 8.5f));
      y[yo + 2 + j] = (byte) (xi0 | (xi1 << 4));
    }
  }

  // block_q5_0: fp16 d, uint8 qh[4] (bit j = high bit of element j), uint8 qs[16]
  private static void q5_0(float[] x, int xo, byte[] y, int yo) {
    float amax = 0f;
    float max = 0f;
    for (int j = 0; j < 32; j++) {
      float v = x[xo + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    float d = max / -16;
    float id = d != 0f ? 1.0f / d : 0.0f;
    putI16(y, yo, HalfFloats.floatToF16(d));
    int qh = 0;
    for (int j = 0; j < 16; j++) {
      float x0 = x[xo + j] * id;
      float x1 = x[xo + 16 + j] * id;
      int xi0 = Math.min(31, (byte) (int) (x0 + 16.5f)) & 0xff;
      int xi1 = Math.min(31, (byte) (int) (x1 + 16.5f)) & 0xff;
      y[yo + 6 + j] = (byte) ((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
      qh |= ((xi0 & 0x10) >>> 4) << j;
      qh |= ((xi1 & 0x10) >>> 4) << (j + 16);
    }
    putI32(y, yo + 2, qh);
  }

  // block_q5_1: fp16 d, fp16 m, uint8 qh[4], uint8 qs[16]
  private static void q5_1(float[] x, int xo, byte[] y, int yo) {
    float min = Float.MAX_VALUE;
    float max = -Float.MAX_VALUE;
    for (int j = 0; j < 32; j++) {
      float v = x[xo + j];
      if (v < min) {
        min = v;
      }
      if (v > max) {
        max = v;
      }
    }
    float d = (max - min) / 31;
    float id = d != 0f ? 1.0f / d : 0.0f;
    putI16(y, yo, HalfFloats.floatToF16(d));
    putI16(y, yo + 2, HalfFloats.floatToF16(min));
    int qh = 0;
    for (int j = 0; j < 16; j++) {
      float x0 = (x[xo + j] - min) * id;
      float x1 = (x[xo + 16 + j] - min) * id;
      int xi0 = ((int) (x0 + 0.5f)) & 0xff;
      int xi1 = ((int) (x1 + 0.5f)) & 0xff;
      y[yo + 8 + j] = (byte) ((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
      qh |= ((xi0 & 0x10) >>> 4) << j;
      qh |= ((xi1 & 0x10) >>> 4) << (j + 16);
    }
    putI32(y, yo + 4, qh);
  }

  /** C's roundf: to nearest, halves away from zero (Math.round rounds halves up). */
  static float roundf(float v) {
    double a = Math.floor(Math.abs((double) v) + 0.5);
    return (float) Math.copySign(a, v);
  }

  static void putI16(byte[] b, int off, short v) {
    b[off] = (byte) v;
    b[off + 1] = (byte) (v >> 8);
  }

  static void putI32(byte[] b, int off, int v) {
    b[off] = (byte) v;
    b[off + 1] = (byte) (v >> 8);
    b[off + 2] = (byte) (v >> 16);
    b[off + 3] = (byte) (v >> 24);
  }
}
