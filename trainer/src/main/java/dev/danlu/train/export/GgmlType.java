package dev.danlu.train.export;

import java.util.Locale;

/**
 * The ggml tensor types danlu writes or can read in a GGUF file, with the numeric ids, block sizes
 * and block byte sizes of ggml's type table ({@code ggml/include/ggml.h}, {@code
 * gguf-py/gguf/constants.py} GGML_QUANT_SIZES). A row of {@code n} elements of a type takes {@code
 * n / blockSize * typeSize} bytes and {@code n} must be a multiple of the block size.
 */
public enum GgmlType {
  F32(0, 1, 4),
  F16(1, 1, 2),
  Q4_0(2, 32, 18),
  Q4_1(3, 32, 20),
  Q5_0(6, 32, 22),
  Q5_1(7, 32, 24),
  Q8_0(8, 32, 34),
  Q2_K(10, 256, 84),
  Q3_K(11, 256, 110),
  Q4_K(12, 256, 144),
  Q5_K(13, 256, 176),
  Q6_K(14, 256, 210),
  Q8_K(15, 256, 292),
  I8(24, 1, 1),
  I16(25, 1, 2),
  I32(26, 1, 4),
  I64(27, 1, 8),
  F64(28, 1, 8),
  BF16(30, 1, 2);

  private final int id;
  private final int blockSize;
  private final int typeSize;

  GgmlType(int id, int blockSize, int typeSize) {
    this.id = id;
    this.blockSize = blockSize;
    this.typeSize = typeSize;
  }

  /** The number stored in a GGUF tensor info. */
  public int id() {
    return id;
  }

  /** Elements per block (1 for plain types). */
  public int blockSize() {
    return blockSize;
  }

  /** Bytes per block. */
  public int typeSize() {
    return typeSize;
  }

  /** True for the block-quantized types. */
  public boolean isQuantized() {
    return blockSize > 1;
  }

  /** ggml's name for the type ("f32", "q4_0", "q4_K"), as llama.cpp prints it. */
  public String ggmlName() {
    String n = name().toLowerCase(Locale.ROOT);
    return n.endsWith("_k") ? n.substring(0, n.length() - 1) + "K" : n;
  }

  /** Bytes of a row of {@code n} elements; {@code n} must be a multiple of the block size. */
  public long rowBytes(long n) {
    if (n % blockSize != 0) {
      throw new IllegalArgumentException(
          "a row of "
              + n
              + " elements is not a multiple of "
              + ggmlName()
              + "'s block "
              + blockSize);
    }
    return n / blockSize * typeSize;
  }

  /** The type with this id, or null when danlu does not know it. */
  public static GgmlType byId(int id) {
    for (GgmlType t : values()) {
      if (t.id == id) {
        return t;
      }
    }
    return null;
  }
}
