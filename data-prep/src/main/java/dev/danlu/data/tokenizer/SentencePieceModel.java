package dev.danlu.data.tokenizer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * The parts of a SentencePiece {@code ModelProto} (sentencepiece_model.proto) that DJL's binding
 * does not expose: the piece table with scores and types, the special ids from the TrainerSpec and
 * the normalizer flags. Parsed with a minimal protobuf wire-format reader so no protobuf runtime is
 * needed.
 */
public final class SentencePieceModel {
  /** Piece types, numbered as in {@code ModelProto.SentencePiece.Type}. */
  public static final int NORMAL = 1;

  public static final int UNKNOWN = 2;
  public static final int CONTROL = 3;
  public static final int USER_DEFINED = 4;
  public static final int UNUSED = 5;
  public static final int BYTE = 6;

  /** TrainerSpec.model_type value for BPE. */
  public static final int MODEL_BPE = 2;

  private final String[] pieces;
  private final float[] scores;
  private final int[] types;
  private final Map<String, Integer> idOfPiece;
  // TrainerSpec; defaults are the proto defaults, used when a field is absent.
  private int modelType = 1;
  private int unkId = 0;
  private int bosId = 1;
  private int eosId = 2;
  private int padId = -1;
  private boolean byteFallback;
  private boolean treatWhitespaceAsSuffix;
  private String unkSurface = " \u2047 ";
  // NormalizerSpec
  private String normalizerName = "";
  private int precompiledCharsmapBytes;
  private boolean addDummyPrefix = true;
  private boolean removeExtraWhitespaces = true;
  private boolean escapeWhitespaces = true;

  private SentencePieceModel(int n) {
    pieces = new String[n];
    scores = new float[n];
    types = new int[n];
    idOfPiece = new HashMap<>(n * 2);
  }

  /**
   * Parses a serialized ModelProto.
   *
   * @param source named in error messages
   * @throws IOException if the bytes are not a SentencePiece model
   */
  public static SentencePieceModel parse(byte[] bytes, String source) throws IOException {
    try {
      ProtoReader top = new ProtoReader(bytes, 0, bytes.length);
      int count = 0;
      while (top.hasMore()) {
        int tag = top.tag();
        if (tag >>> 3 == 1 && (tag & 7) == 2) {
          count++;
        }
        top.skip(tag);
      }
      if (count == 0) {
        throw new IOException(source + " is not a SentencePiece model (no pieces in ModelProto)");
      }
      SentencePieceModel m = new SentencePieceModel(count);
      top = new ProtoReader(bytes, 0, bytes.length);
      int i = 0;
      while (top.hasMore()) {
        int tag = top.tag();
        int field = tag >>> 3;
        if (field == 1 && (tag & 7) == 2) {
          m.readPiece(i++, top.message());
        } else if (field == 2 && (tag & 7) == 2) {
          m.readTrainerSpec(top.message());
        } else if (field == 3 && (tag & 7) == 2) {
          m.readNormalizerSpec(top.message());
        } else {
          top.skip(tag);
        }
      }
      return m;
    } catch (IndexOutOfBoundsException | IllegalStateException e) {
      throw new IOException(
          source + " is not a SentencePiece model (protobuf parse failed: " + e.getMessage() + ")",
          e);
    }
  }

  private void readPiece(int id, ProtoReader r) {
    String piece = "";
    float score = 0f;
    int type = NORMAL;
    while (r.hasMore()) {
      int tag = r.tag();
      switch (tag) {
        case (1 << 3) | 2 -> piece = r.string();
        case (2 << 3) | 5 -> score = Float.intBitsToFloat(r.fixed32());
        case (3 << 3) -> type = (int) r.varint();
        default -> r.skip(tag);
      }
    }
    pieces[id] = piece;
    scores[id] = score;
    types[id] = type;
    idOfPiece.putIfAbsent(piece, id);
  }

  private void readTrainerSpec(ProtoReader r) {
    while (r.hasMore()) {
      int tag = r.tag();
      if (tag == ((44 << 3) | 2)) {
        unkSurface = r.string();
        continue;
      }
      if ((tag & 7) != 0) {
        r.skip(tag);
        continue;
      }
      long v = r.varint();
      switch (tag >>> 3) {
        case 3 -> modelType = (int) v;
        case 24 -> treatWhitespaceAsSuffix = v != 0;
        case 35 -> byteFallback = v != 0;
        case 40 -> unkId = (int) v;
        case 41 -> bosId = (int) v;
        case 42 -> eosId = (int) v;
        case 43 -> padId = (int) v;
        default -> {}
      }
    }
  }

  private void readNormalizerSpec(ProtoReader r) {
    while (r.hasMore()) {
      int tag = r.tag();
      switch (tag) {
        case (1 << 3) | 2 -> normalizerName = r.string();
        case (2 << 3) | 2 -> precompiledCharsmapBytes = r.message().remaining();
        case (3 << 3) -> addDummyPrefix = r.varint() != 0;
        case (4 << 3) -> removeExtraWhitespaces = r.varint() != 0;
        case (5 << 3) -> escapeWhitespaces = r.varint() != 0;
        default -> r.skip(tag);
      }
    }
  }

  public int size() {
    return pieces.length;
  }

  public String piece(int id) {
    return pieces[id];
  }

  public float score(int id) {
    return scores[id];
  }

  public int type(int id) {
    return types[id];
  }

  /** Id of {@code piece}, or -1 if the model has no such piece. */
  public int id(String piece) {
    Integer id = idOfPiece.get(piece);
    return id == null ? -1 : id;
  }

  public int modelType() {
    return modelType;
  }

  public int unkId() {
    return unkId;
  }

  public int bosId() {
    return bosId;
  }

  public int eosId() {
    return eosId;
  }

  /**
   * The TrainerSpec pad id, or else the id of a {@code <pad>} piece (Chinese-LLaMA-2 appended one
   * as a normal piece at 32000 and left pad_id at -1), or -1.
   */
  public int padId() {
    return padId >= 0 ? padId : id("<pad>");
  }

  public boolean byteFallback() {
    return byteFallback;
  }

  /** What the unknown piece decodes to (TrainerSpec.unk_surface, default " ⁇ "). */
  public String unkSurface() {
    return unkSurface;
  }

  public boolean treatWhitespaceAsSuffix() {
    return treatWhitespaceAsSuffix;
  }

  public String normalizerName() {
    return normalizerName;
  }

  /** Size of the normalizer's precompiled character map; 0 for LLaMA's "identity" normalizer. */
  public int precompiledCharsmapBytes() {
    return precompiledCharsmapBytes;
  }

  public boolean addDummyPrefix() {
    return addDummyPrefix;
  }

  public boolean removeExtraWhitespaces() {
    return removeExtraWhitespaces;
  }

  public boolean escapeWhitespaces() {
    return escapeWhitespaces;
  }

  /** Protobuf wire-format cursor over {@code [pos, end)}. */
  private static final class ProtoReader {
    private final byte[] buf;
    private int pos;
    private final int end;

    ProtoReader(byte[] buf, int pos, int end) {
      if (end > buf.length || pos < 0 || pos > end) {
        throw new IndexOutOfBoundsException("length-delimited field runs past the end");
      }
      this.buf = buf;
      this.pos = pos;
      this.end = end;
    }

    boolean hasMore() {
      return pos < end;
    }

    int remaining() {
      return end - pos;
    }

    int tag() {
      long t = varint();
      if (t == 0 || t > Integer.MAX_VALUE) {
        throw new IllegalStateException("bad field tag " + t + " at byte " + pos);
      }
      return (int) t;
    }

    long varint() {
      long v = 0;
      for (int shift = 0; shift < 64; shift += 7) {
        if (pos >= end) {
          throw new IndexOutOfBoundsException("varint runs past the end");
        }
        byte b = buf[pos++];
        v |= (long) (b & 0x7f) << shift;
        if (b >= 0) {
          return v;
        }
      }
      throw new IllegalStateException("varint longer than 10 bytes at byte " + pos);
    }

    int fixed32() {
      if (pos + 4 > end) {
        throw new IndexOutOfBoundsException("fixed32 runs past the end");
      }
      int v =
          (buf[pos] & 0xff)
              | (buf[pos + 1] & 0xff) << 8
              | (buf[pos + 2] & 0xff) << 16
              | (buf[pos + 3] & 0xff) << 24;
      pos += 4;
      return v;
    }

    ProtoReader message() {
      long len = varint();
      if (len < 0 || len > end - pos) {
        throw new IndexOutOfBoundsException("length " + len + " runs past the end");
      }
      ProtoReader sub = new ProtoReader(buf, pos, pos + (int) len);
      pos += (int) len;
      return sub;
    }

    String string() {
      ProtoReader s = message();
      return new String(buf, s.pos, s.end - s.pos, StandardCharsets.UTF_8);
    }

    void skip(int tag) {
      switch (tag & 7) {
        case 0 -> varint();
        case 1 -> advance(8);
        case 2 -> message();
        case 5 -> advance(4);
        default -> throw new IllegalStateException("unsupported wire type " + (tag & 7));
      }
    }

    private void advance(int n) {
      if (pos + n > end) {
        throw new IndexOutOfBoundsException("field runs past the end");
      }
      pos += n;
    }
  }
}
