package dev.danlu.train.checkpoint;

import java.util.Arrays;

/**
 * A small in-memory float32 tensor: row-major data with its PyTorch shape. Used for adapters and
 * tests; base-model weights are streamed instead and never need to exist as one of these.
 */
public record FloatTensor(long[] shape, float[] data) {

  public FloatTensor {
    shape = shape.clone();
    if (TensorInfo.numel(shape) != data.length) {
      throw new IllegalArgumentException(
          "shape "
              + Arrays.toString(shape)
              + " needs "
              + TensorInfo.numel(shape)
              + " elements but data has "
              + data.length);
    }
  }

  /** Convenience for int shapes. */
  public static FloatTensor of(float[] data, long... shape) {
    return new FloatTensor(shape, data);
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  /** Size of dimension {@code i} as an int (adapter tensors are always small enough). */
  public int dim(int i) {
    return Math.toIntExact(shape[i]);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof FloatTensor t
        && Arrays.equals(shape, t.shape)
        && Arrays.equals(data, t.data);
  }

  @Override
  public int hashCode() {
    return 31 * Arrays.hashCode(shape) + Arrays.hashCode(data);
  }

  @Override
  public String toString() {
    return "FloatTensor" + Arrays.toString(shape);
  }
}
