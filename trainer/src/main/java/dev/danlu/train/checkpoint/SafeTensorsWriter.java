package dev.danlu.train.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.danlu.train.tensor.HalfFloats;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Streaming safetensors writer. All tensors are declared first (the header must list every tensor's
 * offsets before any data), then their data is appended in declaration order, in as many pieces as
 * the caller likes, so a multi-GB shard never has to exist in memory.
 *
 * <p>The file is written to a temporary sibling and renamed into place by {@link #close()}, so a
 * crash leaves either the old file or none, never a truncated one. {@link #abort()} (or a close
 * with missing data) deletes the temporary file.
 *
 * <pre>{@code
 * try (SafeTensorsWriter w = SafeTensorsWriter.builder(path).setDType(DType.F16)
 *         .declare("a", 2, 3).declare("b", 4).open()) {
 *   w.writeFloats(aData); w.writeFloats(bData);
 * }
 * }</pre>
 */
public final class SafeTensorsWriter implements AutoCloseable {
  private static final int BUF = 1 << 20;

  private final Path target;
  private final Path tmp;
  private final FileChannel ch;
  private final List<TensorInfo> infos;
  private final ByteBuffer buf = ByteBuffer.allocate(BUF).order(ByteOrder.LITTLE_ENDIAN);
  private int current; // index of the tensor being written
  private long writtenInCurrent; // bytes
  private boolean done;

  /** Declares the contents of one file before any data is written. */
  public static final class Builder {
    private final Path target;
    private final Map<String, String> metadata = new LinkedHashMap<>();
    private final LinkedHashMap<String, TensorInfo> tensors = new LinkedHashMap<>();
    private DType defaultType = DType.F32;
    private long offset;

    private Builder(Path target) {
      this.target = target;
    }

    /** Element type for tensors declared after this call without an explicit type. */
    public Builder setDType(DType dtype) {
      this.defaultType = dtype;
      return this;
    }

    /** Adds a {@code __metadata__} entry (Hugging Face writes {"format": "pt"}). */
    public Builder optMetadata(String key, String value) {
      metadata.put(key, value);
      return this;
    }

    /** Declares a tensor of the current default type. */
    public Builder declare(String name, long... shape) {
      return declare(name, defaultType, shape);
    }

    /** Declares a tensor; data must later be written in declaration order. */
    public Builder declare(String name, DType dtype, long... shape) {
      if (name.equals("__metadata__")) {
        throw new IllegalArgumentException("'__metadata__' is reserved and cannot name a tensor");
      }
      if (tensors.containsKey(name)) {
        throw new IllegalArgumentException(target + ": tensor '" + name + "' declared twice");
      }
      long size = Math.multiplyExact(TensorInfo.numel(shape), dtype.bytes());
      tensors.put(name, new TensorInfo(name, dtype, shape, offset, offset + size));
      offset += size;
      return this;
    }

    /** Total data bytes declared so far (used to size shards). */
    public long dataBytes() {
      return offset;
    }

    /** Creates the temporary file and writes the header. */
    public SafeTensorsWriter open() throws IOException {
      return new SafeTensorsWriter(target, new ArrayList<>(tensors.values()), metadata);
    }
  }

  /** Starts declaring a file that will appear at {@code target} when the writer is closed. */
  public static Builder builder(Path target) {
    return new Builder(target);
  }

  private SafeTensorsWriter(Path target, List<TensorInfo> infos, Map<String, String> metadata)
      throws IOException {
    this.target = target.toAbsolutePath();
    this.infos = infos;
    Path parent = this.target.getParent();
    Files.createDirectories(parent);
    this.tmp = AtomicFiles.tempSibling(this.target);
    this.ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.CREATE_NEW);
    try {
      byte[] header = headerJson(infos, metadata);
      ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      len.putLong(header.length).flip();
      writeAll(len);
      writeAll(ByteBuffer.wrap(header));
      skipEmpty();
    } catch (IOException | RuntimeException e) {
      abort();
      throw e;
    }
  }

  /** The header JSON, space-padded to a multiple of 8 bytes so the data section is aligned. */
  static byte[] headerJson(List<TensorInfo> infos, Map<String, String> metadata) {
    ObjectMapper om = new ObjectMapper();
    ObjectNode root = om.createObjectNode();
    if (!metadata.isEmpty()) {
      ObjectNode md = root.putObject("__metadata__");
      metadata.forEach(md::put);
    }
    for (TensorInfo t : infos) {
      ObjectNode e = root.putObject(t.name());
      e.put("dtype", t.dtype().name());
      ArrayNode sh = e.putArray("shape");
      for (long d : t.shape()) {
        sh.add(d);
      }
      e.putArray("data_offsets").add(t.begin()).add(t.end());
    }
    byte[] json = root.toString().getBytes(StandardCharsets.UTF_8);
    int padded = (json.length + 7) & ~7;
    byte[] out = new byte[padded];
    System.arraycopy(json, 0, out, 0, json.length);
    for (int i = json.length; i < padded; i++) {
      out[i] = ' ';
    }
    return out;
  }

  /** The tensor currently expecting data, or null when all are written. */
  public TensorInfo currentTensor() {
    return current < infos.size() ? infos.get(current) : null;
  }

  /** Appends float32 values to the current tensor(s), converting to each tensor's dtype. */
  public void writeFloats(float[] src) throws IOException {
    writeFloats(src, 0, src.length);
  }

  /**
   * Appends {@code len} values; they may complete the current tensor and continue into the next, so
   * callers can stream without caring about tensor boundaries.
   */
  public void writeFloats(float[] src, int off, int len) throws IOException {
    int i = off;
    int end = off + len;
    while (i < end) {
      TensorInfo t = expectData(end - i);
      int eb = t.dtype().bytes();
      long roomElems = (t.byteSize() - writtenInCurrent) / eb;
      int n = (int) Math.min(end - i, roomElems);
      for (int k = 0; k < n; k++) {
        if (buf.remaining() < 8) {
          flushBuf();
        }
        float v = src[i + k];
        switch (t.dtype()) {
          case F32 -> buf.putFloat(v);
          case F16 -> buf.putShort(HalfFloats.floatToF16(v));
          case BF16 -> buf.putShort(HalfFloats.floatToBf16(v));
          case F64 -> buf.putDouble(v);
          default ->
              throw new IllegalStateException(
                  target
                      + ": tensor '"
                      + t.name()
                      + "' is "
                      + t.dtype()
                      + "; write it with writeBytes");
        }
      }
      i += n;
      advance((long) n * eb);
    }
  }

  /** Appends raw little-endian bytes (already in the declared dtypes), e.g. an unchanged copy. */
  public void writeBytes(ByteBuffer src) throws IOException {
    ByteBuffer s = src.duplicate();
    while (s.hasRemaining()) {
      TensorInfo t = expectData(s.remaining());
      int n = (int) Math.min(s.remaining(), t.byteSize() - writtenInCurrent);
      ByteBuffer slice = s.slice();
      slice.limit(n);
      flushBuf();
      writeAll(slice);
      s.position(s.position() + n);
      advance(n);
    }
  }

  private TensorInfo expectData(int pending) {
    if (done) {
      throw new IllegalStateException(target + ": writer already closed");
    }
    TensorInfo t = currentTensor();
    if (t == null) {
      throw new IllegalStateException(
          target + ": " + pending + " values written past the last declared tensor");
    }
    return t;
  }

  private void advance(long bytes) {
    writtenInCurrent += bytes;
    if (writtenInCurrent == infos.get(current).byteSize()) {
      current++;
      writtenInCurrent = 0;
      skipEmpty();
    }
  }

  private void skipEmpty() {
    while (current < infos.size() && infos.get(current).byteSize() == 0) {
      current++;
    }
  }

  private void flushBuf() throws IOException {
    buf.flip();
    writeAll(buf);
    buf.clear();
  }

  private void writeAll(ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      ch.write(b);
    }
  }

  /**
   * Finishes the file: checks every declared tensor received all its data, syncs, and renames the
   * temporary file onto the target. On a missing-data error the temporary file is deleted.
   */
  @Override
  public void close() throws IOException {
    if (done) {
      return;
    }
    if (current < infos.size()) {
      TensorInfo t = infos.get(current);
      abort();
      throw new IOException(
          target
              + ": closed with tensor '"
              + t.name()
              + "' incomplete ("
              + writtenInCurrent
              + " of "
              + t.byteSize()
              + " bytes) and "
              + (infos.size() - current - 1)
              + " later tensors unwritten; nothing was written");
    }
    try {
      flushBuf();
      ch.force(true);
      ch.close();
      AtomicFiles.commit(tmp, target);
      done = true;
    } catch (IOException | RuntimeException e) {
      abort();
      throw e;
    }
  }

  /** Discards everything written; the target is left untouched. */
  public void abort() {
    done = true;
    try {
      ch.close();
    } catch (IOException ignored) {
      // the file is deleted next; a close failure changes nothing
    }
    try {
      Files.deleteIfExists(tmp);
    } catch (IOException ignored) {
      // best effort: a stray hidden .tmp file is harmless and names its target
    }
  }

  /** Writes in-memory float tensors to one file in map order (adapters, fixtures, tests). */
  public static void write(
      Path target, Map<String, FloatTensor> tensors, DType dtype, Map<String, String> metadata)
      throws IOException {
    Builder b = builder(target).setDType(dtype);
    metadata.forEach(b::optMetadata);
    tensors.forEach((k, v) -> b.declare(k, v.shape()));
    try (SafeTensorsWriter w = b.open()) {
      for (FloatTensor t : tensors.values()) {
        w.writeFloats(t.data());
      }
    }
  }
}
