package dev.danlu.train.tensor;

/**
 * IEEE binary16 and bfloat16 conversions. Java 17 has no {@code Float.float16ToFloat} (added in
 * 20), so these are written out; narrowing rounds to nearest-even like PyTorch's {@code .half()}
 * and {@code .bfloat16()}, so a file we write equals one written by PyTorch from the same floats.
 */
public final class HalfFloats {
  private HalfFloats() {}

  /** bfloat16 bits (low 16 bits of {@code h}) to float: bf16 is the top half of a float32. */
  public static float bf16ToFloat(int h) {
    return Float.intBitsToFloat((h & 0xffff) << 16);
  }

  /**
   * float to bfloat16 bits, round to nearest even (overflow to infinity); every NaN becomes 0x7fc0,
   * as c10::BFloat16 (torch 1.13's vectorized CPU cast writes 0xffff, also a NaN).
   */
  public static short floatToBf16(float f) {
    int bits = Float.floatToRawIntBits(f);
    if (Float.isNaN(f)) {
      return (short) 0x7fc0;
    }
    int rounding = 0x7fff + ((bits >>> 16) & 1);
    return (short) ((bits + rounding) >>> 16);
  }

  /** binary16 bits (low 16 bits of {@code h}) to float, exact (every half is a float). */
  public static float f16ToFloat(int h) {
    int sign = (h & 0x8000) << 16;
    int exp = (h >>> 10) & 0x1f;
    int mant = h & 0x3ff;
    if (exp == 0x1f) {
      return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
    }
    if (exp == 0) {
      if (mant == 0) {
        return Float.intBitsToFloat(sign);
      }
      // Subnormal half: value = mant * 2^-24, exactly representable as a normal float.
      float v = mant * 0x1p-24f;
      return sign == 0 ? v : -v;
    }
    return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
  }

  /**
   * float to binary16 bits, round to nearest even, overflow to infinity; a NaN becomes the quiet
   * NaN 0x7e00 with its sign, as torch's {@code .half()}.
   */
  public static short floatToF16(float f) {
    int bits = Float.floatToRawIntBits(f);
    int sign = (bits >>> 16) & 0x8000;
    int exp = (bits >>> 23) & 0xff;
    int mant = bits & 0x7fffff;
    if (exp == 0xff) {
      return (short) (sign | (mant != 0 ? 0x7e00 : 0x7c00));
    }
    int e = exp - 127 + 15;
    if (e >= 0x1f) {
      return (short) (sign | 0x7c00);
    }
    if (e <= 0) {
      if (e < -10) {
        return (short) sign; // below half the smallest subnormal: rounds to zero
      }
      // Subnormal result: shift the mantissa (with its implicit 1) into place, then round.
      int m = mant | 0x800000;
      int shift = 14 - e;
      int half = m >>> shift;
      int rem = m & ((1 << shift) - 1);
      int mid = 1 << (shift - 1);
      if (rem > mid || (rem == mid && (half & 1) != 0)) {
        half++;
      }
      return (short) (sign | half);
    }
    int half = sign | (e << 10) | (mant >>> 13);
    int rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1) != 0)) {
      half++; // may carry into the exponent, which is the correct rounding (up to infinity)
    }
    return (short) half;
  }
}
