package dev.danlu.train.export;

import java.util.List;

/**
 * Constants and value model of the GGUF v3 container ({@code gguf-py/gguf/constants.py}, {@code
 * gguf_writer.py}, ggml's {@code gguf.cpp}): little-endian; magic "GGUF", version, tensor count and
 * key/value count; key/value pairs; tensor infos (name, dims innermost first, type, offset);
 * padding to the alignment; tensor data, each tensor starting at a multiple of the alignment.
 */
public final class Gguf {
  /** "GGUF" read as a little-endian uint32. */
  public static final int MAGIC = 0x46554747;

  public static final int VERSION = 3;

  /** general.alignment's default; danlu writes with it. */
  public static final int ALIGNMENT = 32;

  // value types
  public static final int UINT8 = 0;
  public static final int INT8 = 1;
  public static final int UINT16 = 2;
  public static final int INT16 = 3;
  public static final int UINT32 = 4;
  public static final int INT32 = 5;
  public static final int FLOAT32 = 6;
  public static final int BOOL = 7;
  public static final int STRING = 8;
  public static final int ARRAY = 9;
  public static final int UINT64 = 10;
  public static final int INT64 = 11;
  public static final int FLOAT64 = 12;

  private Gguf() {}

  /**
   * One metadata value. Scalars hold a boxed Java value (Long for the integer types, Float or
   * Double, Boolean, String); arrays hold a List of such values with {@code elemType}.
   */
  public record Value(int type, int elemType, Object value) {
    public static Value u32(long v) {
      return new Value(UINT32, -1, v);
    }

    public static Value u16(long v) {
      return new Value(UINT16, -1, v);
    }

    public static Value i32(long v) {
      return new Value(INT32, -1, v);
    }

    public static Value f32(float v) {
      return new Value(FLOAT32, -1, v);
    }

    public static Value bool(boolean v) {
      return new Value(BOOL, -1, v);
    }

    public static Value str(String v) {
      return new Value(STRING, -1, v);
    }

    public static Value array(int elemType, List<?> values) {
      return new Value(ARRAY, elemType, List.copyOf(values));
    }

    /** The value as a long (integer types), for readers. */
    public long asLong() {
      return ((Number) value).longValue();
    }

    /** A short rendering for {@code danlu inspect}: arrays show their length and first items. */
    public String render() {
      if (type != ARRAY) {
        return type == STRING ? '"' + String.valueOf(value) + '"' : String.valueOf(value);
      }
      List<?> l = (List<?>) value;
      StringBuilder b = new StringBuilder("[" + typeName(elemType) + " x " + l.size() + "] ");
      for (int i = 0; i < Math.min(l.size(), 5); i++) {
        Object o = l.get(i);
        b.append(i == 0 ? "" : ", ").append(o instanceof String s ? '"' + s + '"' : o);
      }
      return b.append(l.size() > 5 ? ", ..." : "").toString();
    }
  }

  /** Name of a value type, for messages. */
  public static String typeName(int t) {
    return switch (t) {
      case UINT8 -> "u8";
      case INT8 -> "i8";
      case UINT16 -> "u16";
      case INT16 -> "i16";
      case UINT32 -> "u32";
      case INT32 -> "i32";
      case FLOAT32 -> "f32";
      case BOOL -> "bool";
      case STRING -> "str";
      case ARRAY -> "array";
      case UINT64 -> "u64";
      case INT64 -> "i64";
      case FLOAT64 -> "f64";
      default -> "type " + t;
    };
  }

  /** One tensor of a GGUF file: dims are ggml's ne, innermost (row length) first. */
  public record TensorSpec(String name, long[] ne, GgmlType type) {
    public TensorSpec {
      ne = ne.clone();
    }

    @Override
    public long[] ne() {
      return ne.clone();
    }

    /** Elements per row (ne[0]). */
    public long rowLength() {
      return ne[0];
    }

    /** Number of rows: the product of ne[1..]. */
    public long rows() {
      long r = 1;
      for (int i = 1; i < ne.length; i++) {
        r = Math.multiplyExact(r, ne[i]);
      }
      return r;
    }

    /** Bytes of the tensor's data. */
    public long bytes() {
      return Math.multiplyExact(type.rowBytes(ne[0]), rows());
    }
  }

  /** Rounds {@code n} up to a multiple of {@code align}. */
  static long pad(long n, long align) {
    return (n + align - 1) / align * align;
  }
}
