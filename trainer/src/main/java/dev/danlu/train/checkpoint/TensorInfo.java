package dev.danlu.train.checkpoint;

import java.util.Arrays;

/**
 * One entry of a safetensors header: name, element type, shape (row-major, PyTorch layout) and byte
 * offsets {@code [begin, end)} relative to the start of the data section.
 */
public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {

  public TensorInfo {
    shape = shape.clone();
  }

  /** The shape (a copy, so callers cannot corrupt the header). */
  @Override
  public long[] shape() {
    return shape.clone();
  }

  /** Number of elements: the product of the shape (1 for a scalar with shape []). */
  public long numel() {
    return numel(shape);
  }

  /** Size of the data in bytes, {@code end - begin}. */
  public long byteSize() {
    return end - begin;
  }

  /** Product of a shape, failing on overflow rather than wrapping. */
  static long numel(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n = Math.multiplyExact(n, d);
    }
    return n;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TensorInfo t
        && name.equals(t.name)
        && dtype == t.dtype
        && Arrays.equals(shape, t.shape)
        && begin == t.begin
        && end == t.end;
  }

  @Override
  public int hashCode() {
    return 31 * name.hashCode() + Arrays.hashCode(shape);
  }

  @Override
  public String toString() {
    return name + " " + dtype + Arrays.toString(shape) + " @[" + begin + ", " + end + ")";
  }
}
