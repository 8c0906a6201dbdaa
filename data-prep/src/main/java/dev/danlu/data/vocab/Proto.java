package dev.danlu.data.vocab;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The protobuf wire format, as far as a SentencePiece {@code ModelProto} needs it: writing fields
 * by number (varint, fixed32 float, length-delimited) and splitting a message into its top-level
 * fields as raw bytes, so fields danlu does not interpret (normalizer_spec, trainer_spec,
 * self_test_data, unknown fields) are carried through a merge byte for byte. Field numbers are
 * those of sentencepiece's {@code sentencepiece_model.proto}.
 */
final class Proto {
  private Proto() {}

  static final int VARINT = 0;
  static final int FIXED64 = 1;
  static final int LEN = 2;
  static final int FIXED32 = 5;

  /** One top-level field as it appears in the message: number, wire type, tag+payload bytes. */
  record Field(int number, int wireType, byte[] raw, int payloadStart) {
    /** The payload of a length-delimited field. */
    byte[] payload() {
      byte[] p = new byte[raw.length - payloadStart];
      System.arraycopy(raw, payloadStart, p, 0, p.length);
      return p;
    }
  }

  /**
   * Splits {@code msg} into its fields in order.
   *
   * @throws IOException if the bytes are not a well-formed protobuf message
   */
  static List<Field> fields(byte[] msg, String source) throws IOException {
    List<Field> out = new ArrayList<>();
    int[] pos = {0};
    while (pos[0] < msg.length) {
      int start = pos[0];
      long tag = varint(msg, pos, source);
      int number = (int) (tag >>> 3);
      int wire = (int) (tag & 7);
      if (number <= 0) {
        throw malformed(source, start, "field number 0");
      }
      int payloadStart;
      switch (wire) {
        case VARINT -> {
          payloadStart = pos[0];
          varint(msg, pos, source);
        }
        case FIXED64 -> {
          payloadStart = pos[0];
          pos[0] += 8;
        }
        case FIXED32 -> {
          payloadStart = pos[0];
          pos[0] += 4;
        }
        case LEN -> {
          long len = varint(msg, pos, source);
          payloadStart = pos[0];
          if (len < 0 || len > msg.length - pos[0]) {
            throw malformed(source, start, "field " + number + " runs past the end");
          }
          pos[0] += (int) len;
        }
        default -> throw malformed(source, start, "wire type " + wire);
      }
      if (pos[0] > msg.length) {
        throw malformed(source, start, "field " + number + " runs past the end");
      }
      byte[] raw = new byte[pos[0] - start];
      System.arraycopy(msg, start, raw, 0, raw.length);
      out.add(new Field(number, wire, raw, payloadStart - start));
    }
    return out;
  }

  private static IOException malformed(String source, int offset, String what) {
    return new IOException(
        source
            + " is not a SentencePiece model (protobuf wire format broken at byte "
            + offset
            + ": "
            + what
            + ")");
  }

  private static long varint(byte[] b, int[] pos, String source) throws IOException {
    long v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos[0] >= b.length) {
        throw malformed(source, pos[0], "truncated varint");
      }
      int x = b[pos[0]++] & 0xff;
      v |= (long) (x & 0x7f) << shift;
      if (x < 0x80) {
        return v;
      }
    }
    throw malformed(source, pos[0], "varint longer than 10 bytes");
  }

  /** Appends fields to a message under construction. */
  static final class Writer {
    private final ByteArrayOutputStream buf = new ByteArrayOutputStream();

    private void rawVarint(long v) {
      while ((v & ~0x7fL) != 0) {
        buf.write((int) ((v & 0x7f) | 0x80));
        v >>>= 7;
      }
      buf.write((int) v);
    }

    private void tag(int number, int wire) {
      rawVarint(((long) number << 3) | wire);
    }

    /** int32/int64/uint64/enum; a negative int32 takes ten bytes, as protobuf writes it. */
    Writer varint(int number, long v) {
      tag(number, VARINT);
      rawVarint(v);
      return this;
    }

    Writer bool(int number, boolean v) {
      return varint(number, v ? 1 : 0);
    }

    Writer floatField(int number, float v) {
      tag(number, FIXED32);
      int bits = Float.floatToIntBits(v);
      for (int i = 0; i < 4; i++) {
        buf.write(bits >>> (8 * i));
      }
      return this;
    }

    Writer bytes(int number, byte[] v) {
      tag(number, LEN);
      rawVarint(v.length);
      buf.writeBytes(v);
      return this;
    }

    Writer string(int number, String v) {
      return bytes(number, v.getBytes(StandardCharsets.UTF_8));
    }

    Writer message(int number, Writer m) {
      return bytes(number, m.toByteArray());
    }

    /** A field exactly as read by {@link Proto#fields}. */
    Writer raw(Field f) {
      buf.writeBytes(f.raw());
      return this;
    }

    byte[] toByteArray() {
      return buf.toByteArray();
    }
  }
}
