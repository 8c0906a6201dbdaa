package dev.danlu.train.checkpoint;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.train.tensor.HalfFloats;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One {@code .safetensors} file, memory-mapped, with its header validated on open.
 *
 * <p>Format: an 8-byte little-endian header length N, N bytes of JSON mapping tensor names to
 * {@code {"dtype", "shape", "data_offsets": [begin, end]}} (plus an optional {@code "__metadata__"}
 * string map), then the data section. Validation is strict (offsets must tile the data section
 * exactly) because a header that lies is how a truncated download or a buggy writer shows up, and
 * silently reading garbage weights is far worse than refusing.
 *
 * <p>The data section is mapped in windows of at most 1 GiB, because a {@link ByteBuffer} is
 * limited to 2 GiB while a 7B embedding in F32 or a whole shard is larger; reads that cross a
 * window boundary are stitched. Reads duplicate buffers, so concurrent reads are safe.
 */
public final class SafeTensors implements AutoCloseable {
  /** The reference implementation refuses headers above 100 MB; so do we. */
  static final long MAX_HEADER = 100_000_000L;

  static final int DEFAULT_WINDOW = 1 << 30;
  // Duplicate names would let a header describe one tensor twice and silently keep the last.
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

  private final Path file;
  private final FileChannel channel;
  private final Map<String, TensorInfo> tensors;
  private final Map<String, String> metadata;
  private final long dataStart;
  private final int window;
  private final MappedByteBuffer[] windows;
  private volatile boolean closed;

  private SafeTensors(
      Path file,
      FileChannel channel,
      Map<String, TensorInfo> tensors,
      Map<String, String> metadata,
      long dataStart,
      int window,
      MappedByteBuffer[] windows) {
    this.file = file;
    this.channel = channel;
    this.tensors = tensors;
    this.metadata = metadata;
    this.dataStart = dataStart;
    this.window = window;
    this.windows = windows;
  }

  /**
   * Opens and validates a file.
   *
   * @throws IOException if the file cannot be read or its header is malformed, inconsistent or
   *     promises more data than the file holds (the message names the file and the tensor)
   */
  public static SafeTensors open(Path file) throws IOException {
    return open(file, DEFAULT_WINDOW);
  }

  /** As {@link #open(Path)} with a chosen mapping window (tests use tiny windows). */
  static SafeTensors open(Path file, int window) throws IOException {
    FileChannel ch = FileChannel.open(file, StandardOpenOption.READ);
    try {
      long size = ch.size();
      if (size < 8) {
        throw new IOException(
            file + ": not a safetensors file: " + size + " bytes, less than the 8-byte header");
      }
      ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      readFully(ch, lenBuf, 0, file);
      long headerLen = lenBuf.getLong(0);
      if (headerLen < 2 || headerLen > MAX_HEADER || headerLen > size - 8) {
        throw new IOException(
            file
                + ": header length "
                + Long.toUnsignedString(headerLen)
                + " is impossible for a file of "
                + size
                + " bytes (limit "
                + MAX_HEADER
                + "); the file is truncated or not safetensors");
      }
      ByteBuffer hdr = ByteBuffer.allocate((int) headerLen);
      readFully(ch, hdr, 8, file);
      String json = new String(hdr.array(), StandardCharsets.UTF_8);
      long dataStart = 8 + headerLen;
      long dataLen = size - dataStart;
      Map<String, String> metadata = new LinkedHashMap<>();
      Map<String, TensorInfo> tensors = parseHeader(file, json, dataLen, metadata);
      int nWindows = (int) ((dataLen + window - 1) / window);
      MappedByteBuffer[] windows = new MappedByteBuffer[nWindows];
      for (int i = 0; i < nWindows; i++) {
        long off = (long) i * window;
        windows[i] =
            ch.map(FileChannel.MapMode.READ_ONLY, dataStart + off, Math.min(window, dataLen - off));
      }
      return new SafeTensors(
          file,
          ch,
          Collections.unmodifiableMap(tensors),
          Collections.unmodifiableMap(metadata),
          dataStart,
          window,
          windows);
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
  }

  private static void readFully(FileChannel ch, ByteBuffer buf, long pos, Path file)
      throws IOException {
    while (buf.hasRemaining()) {
      int n = ch.read(buf, pos + buf.position());
      if (n < 0) {
        throw new IOException(file + ": unexpected end of file at byte " + (pos + buf.position()));
      }
    }
  }

  /** Parses and checks the JSON header; fills {@code metadata}, returns tensors in file order. */
  static Map<String, TensorInfo> parseHeader(
      Path file, String json, long dataLen, Map<String, String> metadata) throws IOException {
    JsonNode root;
    try {
      root = JSON.readTree(json);
    } catch (JsonProcessingException e) {
      throw new IOException(
          file + ": header is not valid JSON: " + e.getOriginalMessage() + " (file corrupt?)", e);
    }
    if (root == null || !root.isObject()) {
      throw new IOException(file + ": header must be a JSON object");
    }
    Map<String, TensorInfo> tensors = new LinkedHashMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      String name = e.getKey();
      JsonNode v = e.getValue();
      if (name.equals("__metadata__")) {
        if (!v.isObject()) {
          throw new IOException(file + ": __metadata__ must be an object of strings");
        }
        for (Iterator<Map.Entry<String, JsonNode>> m = v.fields(); m.hasNext(); ) {
          Map.Entry<String, JsonNode> kv = m.next();
          if (!kv.getValue().isTextual()) {
            throw new IOException(
                file + ": __metadata__." + kv.getKey() + " must be a string, got " + kv.getValue());
          }
          metadata.put(kv.getKey(), kv.getValue().asText());
        }
        continue;
      }
      tensors.put(name, parseEntry(file, name, v, dataLen));
    }
    checkTiling(file, tensors.values(), dataLen);
    return tensors;
  }

  private static TensorInfo parseEntry(Path file, String name, JsonNode v, long dataLen)
      throws IOException {
    String where = file + ": tensor '" + name + "'";
    if (!v.isObject()) {
      throw new IOException(where + ": entry must be an object, got " + v);
    }
    JsonNode dt = v.get("dtype");
    JsonNode sh = v.get("shape");
    JsonNode off = v.get("data_offsets");
    if (dt == null || !dt.isTextual() || sh == null || !sh.isArray() || off == null) {
      throw new IOException(where + ": entry needs dtype (string), shape (array), data_offsets");
    }
    DType dtype;
    try {
      dtype = DType.valueOf(dt.asText());
    } catch (IllegalArgumentException e) {
      throw new IOException(where + ": unsupported dtype '" + dt.asText() + "'");
    }
    long[] shape = new long[sh.size()];
    for (int i = 0; i < shape.length; i++) {
      JsonNode d = sh.get(i);
      if (!d.isIntegralNumber() || d.asLong() < 0) {
        throw new IOException(where + ": shape " + sh + " must hold non-negative integers");
      }
      shape[i] = d.asLong();
    }
    if (!off.isArray()
        || off.size() != 2
        || !off.get(0).isIntegralNumber()
        || !off.get(1).isIntegralNumber()) {
      throw new IOException(where + ": data_offsets must be [begin, end], got " + off);
    }
    long begin = off.get(0).asLong();
    long end = off.get(1).asLong();
    if (begin < 0 || end < begin) {
      throw new IOException(where + ": data_offsets " + off + " are not 0 <= begin <= end");
    }
    long expected;
    try {
      expected = Math.multiplyExact(TensorInfo.numel(shape), dtype.bytes());
    } catch (ArithmeticException e) {
      throw new IOException(where + ": shape " + sh + " overflows");
    }
    if (end - begin != expected) {
      throw new IOException(
          where
              + ": shape "
              + sh
              + " x "
              + dtype
              + " needs "
              + expected
              + " bytes but data_offsets "
              + off
              + " span "
              + (end - begin));
    }
    if (end > dataLen) {
      throw new IOException(
          where
              + ": data ends at byte "
              + end
              + " of the data section but the file holds only "
              + dataLen
              + " data bytes (expected a file of at least "
              + end
              + " data bytes, actual "
              + dataLen
              + "): the file is truncated; download or write it again");
    }
    return new TensorInfo(name, dtype, shape, begin, end);
  }

  /** Tensors must cover the data section exactly once: no overlaps, no holes, no trailing data. */
  private static void checkTiling(Path file, Iterable<TensorInfo> infos, long dataLen)
      throws IOException {
    List<TensorInfo> sorted = new ArrayList<>();
    infos.forEach(sorted::add);
    sorted.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
    long pos = 0;
    TensorInfo prev = null;
    for (TensorInfo t : sorted) {
      if (t.begin() < pos) {
        throw new IOException(
            file + ": tensors '" + prev.name() + "' and '" + t.name() + "' overlap at byte " + pos);
      }
      if (t.begin() > pos) {
        throw new IOException(
            file
                + ": hole in the data section: bytes ["
                + pos
                + ", "
                + t.begin()
                + ") before tensor '"
                + t.name()
                + "' belong to no tensor");
      }
      pos = t.end();
      prev = t;
    }
    if (pos != dataLen) {
      throw new IOException(
          file
              + ": the header describes "
              + pos
              + " data bytes but the file holds "
              + dataLen
              + " (trailing garbage or a header that lies)");
    }
  }

  /** The file this was opened from. */
  public Path file() {
    return file;
  }

  /** Tensor names in header order (for files we write: the order tensors were added). */
  public Set<String> names() {
    return tensors.keySet();
  }

  /** Whether the file holds a tensor of this name. */
  public boolean contains(String name) {
    return tensors.containsKey(name);
  }

  /**
   * The header entry of a tensor.
   *
   * @throws IllegalArgumentException naming file and tensor if absent
   */
  public TensorInfo info(String name) {
    TensorInfo t = tensors.get(name);
    if (t == null) {
      throw new IllegalArgumentException(
          file
              + ": no tensor named '"
              + name
              + "' (the file holds "
              + tensors.size()
              + " tensors)");
    }
    return t;
  }

  /** The {@code __metadata__} map (empty if absent). */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** Reads a whole F32/F16/BF16/F64 tensor as float32, row-major. */
  public float[] readFloats(String name) {
    TensorInfo t = info(name);
    if (t.numel() > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(
          file
              + ": tensor '"
              + name
              + "' has "
              + t.numel()
              + " elements, too many for one array;"
              + " read it in pieces with readFloats(name, offset, dst, dstOff, count)");
    }
    float[] out = new float[(int) t.numel()];
    readFloats(name, 0, out, 0, out.length);
    return out;
  }

  /**
   * Reads {@code count} elements starting at element {@code offset} of a float tensor into {@code
   * dst[dstOff..]}, converting to float32. Lets callers stream tensors larger than an array.
   */
  public void readFloats(String name, long offset, float[] dst, int dstOff, int count) {
    TensorInfo t = info(name);
    if (!t.dtype().isFloat()) {
      throw new IllegalArgumentException(
          file + ": tensor '" + name + "' is " + t.dtype() + ", not a float type");
    }
    checkRange(t, offset, count);
    int eb = t.dtype().bytes();
    // Chunked so a conversion buffer stays small however large the tensor.
    int chunk = Math.max(1, (1 << 20) / eb);
    ByteBuffer buf =
        ByteBuffer.allocate(Math.min(count, chunk) * eb).order(ByteOrder.LITTLE_ENDIAN);
    int done = 0;
    while (done < count) {
      int n = Math.min(chunk, count - done);
      buf.clear().limit(n * eb);
      copyBytes(t.begin() + (offset + done) * eb, buf);
      buf.flip();
      decode(t.dtype(), buf, dst, dstOff + done, n);
      done += n;
    }
  }

  private static void decode(DType dt, ByteBuffer buf, float[] dst, int off, int n) {
    switch (dt) {
      case F32 -> buf.asFloatBuffer().get(dst, off, n);
      case F64 -> {
        for (int i = 0; i < n; i++) {
          dst[off + i] = (float) buf.getDouble(i * 8);
        }
      }
      case F16 -> {
        for (int i = 0; i < n; i++) {
          dst[off + i] = HalfFloats.f16ToFloat(buf.getShort(i * 2));
        }
      }
      case BF16 -> {
        for (int i = 0; i < n; i++) {
          dst[off + i] = HalfFloats.bf16ToFloat(buf.getShort(i * 2));
        }
      }
      default -> throw new AssertionError(dt);
    }
  }

  /** Reads an F64 tensor exactly (fixtures store float64 references this way). */
  public double[] readDoubles(String name) {
    TensorInfo t = info(name);
    if (t.dtype() != DType.F64) {
      throw new IllegalArgumentException(
          file + ": tensor '" + name + "' is " + t.dtype() + ", not F64");
    }
    ByteBuffer b = readBytes(name);
    double[] out = new double[(int) t.numel()];
    b.asDoubleBuffer().get(out);
    return out;
  }

  /** Reads an integer tensor (I64/I32/I16/I8/U8/BOOL) widened to long. */
  public long[] readLongs(String name) {
    TensorInfo t = info(name);
    ByteBuffer b = readBytes(name);
    long[] out = new long[(int) t.numel()];
    for (int i = 0; i < out.length; i++) {
      out[i] =
          switch (t.dtype()) {
            case I64 -> b.getLong(i * 8);
            case I32 -> b.getInt(i * 4);
            case I16 -> b.getShort(i * 2);
            case I8 -> b.get(i);
            case U8, BOOL -> b.get(i) & 0xff;
            default ->
                throw new IllegalArgumentException(
                    file + ": tensor '" + name + "' is " + t.dtype() + ", not an integer type");
          };
    }
    return out;
  }

  /**
   * The raw little-endian bytes of a tensor (under 2 GiB), for copying a tensor unchanged into
   * another file without a round trip through float.
   */
  public ByteBuffer readBytes(String name) {
    TensorInfo t = info(name);
    if (t.byteSize() > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(
          file + ": tensor '" + name + "' is " + t.byteSize() + " bytes, too large for one buffer");
    }
    ByteBuffer out = ByteBuffer.allocate((int) t.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
    copyBytes(t.begin(), out);
    out.flip();
    return out;
  }

  /**
   * Copies raw bytes of a tensor, {@code [byteOffset, byteOffset + dst.remaining())} relative to
   * the tensor start, into {@code dst}; for streaming tensors of any size.
   */
  public void readBytes(String name, long byteOffset, ByteBuffer dst) {
    TensorInfo t = info(name);
    if (byteOffset < 0 || byteOffset + dst.remaining() > t.byteSize()) {
      throw new IndexOutOfBoundsException(
          file
              + ": bytes ["
              + byteOffset
              + ", +"
              + dst.remaining()
              + ") outside tensor '"
              + name
              + "' of "
              + t.byteSize()
              + " bytes");
    }
    copyBytes(t.begin() + byteOffset, dst);
  }

  private void checkRange(TensorInfo t, long offset, int count) {
    if (offset < 0 || count < 0 || offset + count > t.numel()) {
      throw new IndexOutOfBoundsException(
          file
              + ": elements ["
              + offset
              + ", +"
              + count
              + ") outside tensor '"
              + t.name()
              + "' of "
              + t.numel()
              + " elements");
    }
  }

  /** Copies {@code dst.remaining()} bytes from data-section offset {@code pos}, across windows. */
  private void copyBytes(long pos, ByteBuffer dst) {
    if (closed) {
      throw new IllegalStateException(file + ": read after close");
    }
    while (dst.hasRemaining()) {
      int w = (int) (pos / window);
      int inWin = (int) (pos % window);
      ByteBuffer src = windows[w].duplicate();
      int n = Math.min(dst.remaining(), src.limit() - inWin);
      src.position(inWin).limit(inWin + n);
      dst.put(src);
      pos += n;
    }
  }

  /** Byte offset of the data section in the file (8 + header length). */
  long dataStart() {
    return dataStart;
  }

  @Override
  public void close() {
    // Mapped buffers are released by the GC; closing the channel does not invalidate them, so
    // the flag turns late reads into a clear error instead of reading a stale mapping.
    closed = true;
    try {
      channel.close();
    } catch (IOException e) {
      throw new UncheckedIOException(file + ": close failed", e);
    }
  }
}
