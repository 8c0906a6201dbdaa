package dev.danlu.train.export;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads and validates a GGUF file's header: metadata and tensor table, plus raw tensor bytes for
 * tests. Strict like {@code SafeTensors}: a header that promises more than the file holds, lengths
 * beyond the file, unknown value or tensor types, misaligned or overlapping tensors are errors
 * naming the file, the byte offset and the key or tensor, because a truncated download should fail
 * here rather than inside llama.cpp.
 */
public final class GgufFile {
  /** One tensor info with its absolute byte range in the file. */
  public record TensorEntry(Gguf.TensorSpec spec, long offset, long start) {
    public long end() {
      return start + spec.bytes();
    }
  }

  private final Path file;
  private final int version;
  private final Map<String, Gguf.Value> kv;
  private final Map<String, TensorEntry> tensors;
  private final long dataStart;
  private final long size;

  private GgufFile(
      Path file,
      int version,
      Map<String, Gguf.Value> kv,
      Map<String, TensorEntry> tensors,
      long dataStart,
      long size) {
    this.file = file;
    this.version = version;
    this.kv = kv;
    this.tensors = tensors;
    this.dataStart = dataStart;
    this.size = size;
  }

  /** Parses and validates {@code file}'s header. */
  public static GgufFile open(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      Reader r = new Reader(file, ch);
      int magic = r.i32();
      if (magic != Gguf.MAGIC) {
        throw new IOException(
            file + ": not a GGUF file (magic " + String.format("0x%08x", magic) + ")");
      }
      int version = r.i32();
      if (version != 2 && version != 3) {
        throw new IOException(file + ": GGUF version " + version + " (danlu reads 2 and 3)");
      }
      long nTensors = r.count("tensor count");
      long nKv = r.count("metadata count");
      Map<String, Gguf.Value> kv = new LinkedHashMap<>();
      for (long i = 0; i < nKv; i++) {
        long at = r.pos;
        String key = r.str("metadata key " + i);
        int type = r.i32();
        Gguf.Value v;
        if (type == Gguf.ARRAY) {
          int et = r.i32();
          long n = r.count("array " + key);
          if (et == Gguf.ARRAY) {
            throw new IOException(file + ": metadata '" + key + "' is an array of arrays");
          }
          List<Object> l = new ArrayList<>((int) Math.min(n, 1 << 20));
          for (long j = 0; j < n; j++) {
            l.add(r.scalar(et, key));
          }
          v = new Gguf.Value(Gguf.ARRAY, et, Collections.unmodifiableList(l));
        } else {
          v = new Gguf.Value(type, -1, r.scalar(type, key));
        }
        if (kv.put(key, v) != null) {
          throw new IOException(
              file + ": metadata key '" + key + "' appears twice (byte " + at + ")");
        }
      }
      long align = Gguf.ALIGNMENT;
      Gguf.Value a = kv.get("general.alignment");
      if (a != null) {
        align = a.asLong();
        if (align <= 0 || (align & (align - 1)) != 0) {
          throw new IOException(file + ": general.alignment " + align + " is not a power of two");
        }
      }
      List<Object[]> infos = new ArrayList<>();
      Set<String> names = new HashSet<>();
      for (long i = 0; i < nTensors; i++) {
        String name = r.str("tensor name " + i);
        int nDims = r.i32();
        if (nDims < 1 || nDims > 4) {
          throw new IOException(file + ": tensor '" + name + "' has " + nDims + " dims (1..4)");
        }
        long[] ne = new long[nDims];
        for (int d = 0; d < nDims; d++) {
          ne[d] = r.i64();
          if (ne[d] < 0) {
            throw new IOException(file + ": tensor '" + name + "' has a negative dimension");
          }
        }
        int typeId = r.i32();
        GgmlType t = GgmlType.byId(typeId);
        if (t == null) {
          throw new IOException(
              file + ": tensor '" + name + "' has ggml type " + typeId + ", unknown to danlu");
        }
        long off = r.i64();
        if (!names.add(name)) {
          throw new IOException(file + ": tensor '" + name + "' appears twice");
        }
        if (ne[0] % t.blockSize() != 0) {
          throw new IOException(
              file
                  + ": tensor '"
                  + name
                  + "' rows of "
                  + ne[0]
                  + " are not whole "
                  + t.ggmlName()
                  + " blocks");
        }
        infos.add(new Object[] {new Gguf.TensorSpec(name, ne, t), off});
      }
      long dataStart = Gguf.pad(r.pos, align);
      long size = ch.size();
      Map<String, TensorEntry> tensors = new LinkedHashMap<>();
      List<TensorEntry> byOffset = new ArrayList<>();
      for (Object[] o : infos) {
        Gguf.TensorSpec spec = (Gguf.TensorSpec) o[0];
        long off = (Long) o[1];
        if (off % align != 0) {
          throw new IOException(
              file
                  + ": tensor '"
                  + spec.name()
                  + "' offset "
                  + off
                  + " is not aligned to "
                  + align);
        }
        TensorEntry e = new TensorEntry(spec, off, dataStart + off);
        if (e.end() > size) {
          throw new IOException(
              file
                  + ": tensor '"
                  + spec.name()
                  + "' ends at byte "
                  + e.end()
                  + " but the file has "
                  + size
                  + " bytes: the file is truncated; write or download it again");
        }
        tensors.put(spec.name(), e);
        byOffset.add(e);
      }
      byOffset.sort((x, y) -> Long.compare(x.start(), y.start()));
      for (int i = 1; i < byOffset.size(); i++) {
        if (byOffset.get(i).start() < byOffset.get(i - 1).end()) {
          throw new IOException(
              file
                  + ": tensors '"
                  + byOffset.get(i - 1).spec().name()
                  + "' and '"
                  + byOffset.get(i).spec().name()
                  + "' overlap");
        }
      }
      return new GgufFile(
          file,
          version,
          Collections.unmodifiableMap(kv),
          Collections.unmodifiableMap(tensors),
          dataStart,
          size);
    }
  }

  public Path file() {
    return file;
  }

  public int version() {
    return version;
  }

  /** Metadata in file order. */
  public Map<String, Gguf.Value> metadata() {
    return kv;
  }

  /** Tensors in file order. */
  public Map<String, TensorEntry> tensors() {
    return tensors;
  }

  /** Byte offset of the data section. */
  public long dataStart() {
    return dataStart;
  }

  /** File size in bytes. */
  public long size() {
    return size;
  }

  /** A metadata value, or an error naming the file and key. */
  public Gguf.Value get(String key) throws IOException {
    Gguf.Value v = kv.get(key);
    if (v == null) {
      throw new IOException(file + ": no metadata key '" + key + "'");
    }
    return v;
  }

  /** The raw bytes of a tensor (tests; a tensor under 2 GiB). */
  public byte[] readTensor(String name) throws IOException {
    TensorEntry e = tensors.get(name);
    if (e == null) {
      throw new IOException(file + ": no tensor '" + name + "'");
    }
    byte[] b = new byte[Math.toIntExact(e.spec().bytes())];
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      ByteBuffer bb = ByteBuffer.wrap(b);
      while (bb.hasRemaining()) {
        if (ch.read(bb, e.start() + bb.position()) < 0) {
          throw new IOException(file + ": unexpected end of file in tensor '" + name + "'");
        }
      }
    }
    return b;
  }

  /** Sequential little-endian reads with bounds checks against the file size. */
  private static final class Reader {
    private final Path file;
    private final FileChannel ch;
    private final long size;
    private final ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
    private long bufStart;
    long pos;

    Reader(Path file, FileChannel ch) throws IOException {
      this.file = file;
      this.ch = ch;
      this.size = ch.size();
      buf.limit(0);
    }

    private void need(int n, String what) throws IOException {
      if (pos + n > size) {
        throw new IOException(
            file
                + ": header ends early at byte "
                + size
                + " while reading "
                + what
                + ": the file is truncated or not GGUF");
      }
      long inBuf = pos - bufStart;
      if (inBuf < 0 || inBuf + n > buf.limit()) {
        buf.clear();
        bufStart = pos;
        while (buf.position() < n) {
          if (ch.read(buf, pos + buf.position()) < 0) {
            break;
          }
        }
        buf.flip();
      }
    }

    private int at() {
      return (int) (pos - bufStart);
    }

    int i32() throws IOException {
      need(4, "a 32-bit field");
      int v = buf.getInt(at());
      pos += 4;
      return v;
    }

    long i64() throws IOException {
      need(8, "a 64-bit field");
      long v = buf.getLong(at());
      pos += 8;
      return v;
    }

    long count(String what) throws IOException {
      long n = i64();
      if (n < 0 || n > size) {
        throw new IOException(
            file
                + ": "
                + what
                + " "
                + Long.toUnsignedString(n)
                + " at byte "
                + (pos - 8)
                + " is impossible for a file of "
                + size
                + " bytes (truncated or not GGUF)");
      }
      return n;
    }

    String str(String what) throws IOException {
      long n = count("length of " + what);
      if (pos + n > size) {
        throw new IOException(
            file
                + ": "
                + what
                + " of "
                + n
                + " bytes at byte "
                + pos
                + " runs past the end ("
                + size
                + " bytes): the file is truncated");
      }
      byte[] b = new byte[(int) n];
      int done = 0;
      while (done < n) {
        int chunk = (int) Math.min(n - done, 1 << 15);
        need(chunk, what);
        buf.get(at(), b, done, chunk);
        pos += chunk;
        done += chunk;
      }
      try {
        return StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .decode(ByteBuffer.wrap(b))
            .toString();
      } catch (CharacterCodingException e) {
        throw new IOException(file + ": " + what + " at byte " + (pos - n) + " is not UTF-8");
      }
    }

    Object scalar(int type, String key) throws IOException {
      switch (type) {
        case Gguf.UINT8, Gguf.INT8, Gguf.BOOL -> {
          need(1, key);
          byte b = buf.get(at());
          pos += 1;
          return type == Gguf.BOOL
              ? (Object) (b != 0)
              : (Object) (long) (type == Gguf.UINT8 ? b & 0xff : b);
        }
        case Gguf.UINT16, Gguf.INT16 -> {
          need(2, key);
          short s = buf.getShort(at());
          pos += 2;
          return (long) (type == Gguf.UINT16 ? s & 0xffff : s);
        }
        case Gguf.UINT32 -> {
          return Integer.toUnsignedLong(i32());
        }
        case Gguf.INT32 -> {
          return (long) i32();
        }
        case Gguf.UINT64, Gguf.INT64 -> {
          return i64();
        }
        case Gguf.FLOAT32 -> {
          return Float.intBitsToFloat(i32());
        }
        case Gguf.FLOAT64 -> {
          return Double.longBitsToDouble(i64());
        }
        case Gguf.STRING -> {
          return str("value of " + key);
        }
        default ->
            throw new IOException(
                file
                    + ": metadata '"
                    + key
                    + "' has unknown value type "
                    + type
                    + " at byte "
                    + (pos - 4));
      }
    }
  }
}
