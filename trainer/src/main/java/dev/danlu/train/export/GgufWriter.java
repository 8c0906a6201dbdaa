package dev.danlu.train.export;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Writes one GGUF v3 file in a single pass: the header, every key/value pair and every tensor info
 * first (the plan, so offsets are known), then the tensors' data in plan order, each padded to
 * {@link Gguf#ALIGNMENT}. Callers stream a tensor's bytes with {@link #write} in as many pieces as
 * they like; {@link #close} fails if a tensor got fewer or more bytes than its type and shape need.
 */
public final class GgufWriter implements AutoCloseable {
  private final Path file;
  private final OutputStream out;
  private final List<Gguf.TensorSpec> tensors;
  private long pos;
  private int current = -1;
  private long remaining;
  private boolean closed;

  /** Creates {@code file} and writes the header, metadata and tensor infos. */
  public GgufWriter(Path file, Map<String, Gguf.Value> kv, List<Gguf.TensorSpec> tensors)
      throws IOException {
    this.file = file;
    this.tensors = List.copyOf(tensors);
    this.out = new BufferedOutputStream(Files.newOutputStream(file), 1 << 20);
    u32(Gguf.MAGIC);
    u32(Gguf.VERSION);
    u64(tensors.size());
    u64(kv.size());
    for (Map.Entry<String, Gguf.Value> e : kv.entrySet()) {
      str(e.getKey());
      Gguf.Value v = e.getValue();
      u32(v.type());
      if (v.type() == Gguf.ARRAY) {
        List<?> l = (List<?>) v.value();
        u32(v.elemType());
        u64(l.size());
        for (Object o : l) {
          scalar(v.elemType(), o, e.getKey());
        }
      } else {
        scalar(v.type(), v.value(), e.getKey());
      }
    }
    long offset = 0;
    for (Gguf.TensorSpec t : tensors) {
      str(t.name());
      long[] ne = t.ne();
      u32(ne.length);
      for (long d : ne) {
        u64(d);
      }
      u32(t.type().id());
      u64(offset);
      offset = Gguf.pad(offset + t.bytes(), Gguf.ALIGNMENT);
    }
    zeros(Gguf.pad(pos, Gguf.ALIGNMENT) - pos);
  }

  /** Starts the next tensor of the plan; its name must match. */
  public void begin(String name) throws IOException {
    finishCurrent();
    current++;
    if (current >= tensors.size() || !tensors.get(current).name().equals(name)) {
      throw new IllegalStateException(
          file + ": tensor '" + name + "' written out of plan order (expected " + expected() + ")");
    }
    remaining = tensors.get(current).bytes();
  }

  /** Appends bytes of the current tensor. */
  public void write(byte[] b, int off, int len) throws IOException {
    if (current < 0 || len > remaining) {
      throw new IllegalStateException(
          file + ": " + len + " bytes more than tensor " + expected() + " holds");
    }
    out.write(b, off, len);
    pos += len;
    remaining -= len;
  }

  private String expected() {
    return current >= 0 && current < tensors.size()
        ? "'" + tensors.get(current).name() + "'"
        : "nothing more";
  }

  private void finishCurrent() throws IOException {
    if (current >= 0) {
      if (remaining != 0) {
        throw new IllegalStateException(
            file + ": tensor " + expected() + " is " + remaining + " bytes short");
      }
      zeros(Gguf.pad(pos, Gguf.ALIGNMENT) - pos);
    }
  }

  /** Bytes written so far. */
  public long position() {
    return pos;
  }

  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    try (out) {
      finishCurrent();
      if (current != tensors.size() - 1) {
        throw new IllegalStateException(
            file + ": closed after " + (current + 1) + " of " + tensors.size() + " tensors");
      }
    }
  }

  /** Closes without the completeness check (the caller is abandoning the file). */
  public void abort() {
    closed = true;
    try {
      out.close();
    } catch (IOException ignored) {
      // the file is deleted by the caller
    }
  }

  private void scalar(int type, Object o, String key) throws IOException {
    switch (type) {
      case Gguf.UINT8, Gguf.INT8 -> u8((int) ((Number) o).longValue());
      case Gguf.BOOL -> u8(((Boolean) o) ? 1 : 0);
      case Gguf.UINT16, Gguf.INT16 -> {
        int v = (int) ((Number) o).longValue();
        u8(v);
        u8(v >> 8);
      }
      case Gguf.UINT32, Gguf.INT32 -> u32((int) ((Number) o).longValue());
      case Gguf.UINT64, Gguf.INT64 -> u64(((Number) o).longValue());
      case Gguf.FLOAT32 -> u32(Float.floatToRawIntBits(((Number) o).floatValue()));
      case Gguf.FLOAT64 -> u64(Double.doubleToRawLongBits(((Number) o).doubleValue()));
      case Gguf.STRING -> str((String) o);
      default -> throw new IllegalArgumentException(key + ": cannot write value type " + type);
    }
  }

  private void str(String s) throws IOException {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    u64(b.length);
    out.write(b);
    pos += b.length;
  }

  private void u8(int v) throws IOException {
    out.write(v);
    pos++;
  }

  private void u32(int v) throws IOException {
    for (int i = 0; i < 4; i++) {
      out.write(v >>> (8 * i));
    }
    pos += 4;
  }

  private void u64(long v) throws IOException {
    for (int i = 0; i < 8; i++) {
      out.write((int) (v >>> (8 * i)));
    }
    pos += 8;
  }

  private void zeros(long n) throws IOException {
    for (long i = 0; i < n; i++) {
      out.write(0);
    }
    pos += n;
  }
}
