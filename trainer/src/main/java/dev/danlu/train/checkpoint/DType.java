package dev.danlu.train.checkpoint;

import java.util.Locale;

/**
 * Element types of the safetensors format, named as they appear in a header ("F32", "BF16", ...).
 * Only the float types convert to {@code float[]}; the integer types exist so that files holding
 * token ids (and the reference fixtures) can be opened and validated.
 */
public enum DType {
  F64(8),
  F32(4),
  F16(2),
  BF16(2),
  I64(8),
  I32(4),
  I16(2),
  I8(1),
  U8(1),
  BOOL(1);

  private final int bytes;

  DType(int bytes) {
    this.bytes = bytes;
  }

  /** Size of one element in bytes. */
  public int bytes() {
    return bytes;
  }

  /** True for the types {@link SafeTensors#readFloats} converts to float32. */
  public boolean isFloat() {
    return this == F64 || this == F32 || this == F16 || this == BF16;
  }

  /**
   * Parses a header dtype string, or a command-line spelling such as "f16"/"bf16"/"fp32".
   *
   * @throws IllegalArgumentException naming the accepted values
   */
  public static DType parse(String s) {
    String u = s.toUpperCase(Locale.ROOT);
    if (u.equals("FP32") || u.equals("FLOAT32")) {
      return F32;
    }
    if (u.equals("FP16") || u.equals("FLOAT16") || u.equals("HALF")) {
      return F16;
    }
    if (u.equals("BFLOAT16")) {
      return BF16;
    }
    try {
      return valueOf(u);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(
          "unknown dtype '" + s + "' (known: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
    }
  }
}
