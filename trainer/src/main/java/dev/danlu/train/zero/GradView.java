package dev.danlu.train.zero;

import java.nio.FloatBuffer;
import java.util.Arrays;

/**
 * The optimizer's read access to the flat gradients wherever they live: an array is read in place,
 * a direct buffer through one small L1-resident tile (so direct gradients cost no extra memory,
 * just a memcpy of each tile the optimizer reads).
 */
final class GradView {
  static final int TILE = 4096;

  private final float[] array; // null when direct
  private final FloatBuffer direct;
  private final float[] tile;

  GradView(FlatParams flat) {
    this.array = flat.directGrads() ? null : flat.grads();
    this.direct = flat.directGrads() ? flat.gradFloats() : null;
    this.tile = array == null ? new float[TILE] : null;
  }

  /** An array holding gradients {@code [from, from+n)} (n ≤ TILE) at {@link #tileOffset}. */
  float[] tile(int from, int n) {
    if (array != null) {
      return array;
    }
    direct.get(from, tile, 0, n);
    return tile;
  }

  /** Where gradient {@code from} sits in the array {@link #tile} returned for it. */
  int tileOffset(int from) {
    return array != null ? from : 0;
  }

  void zero() {
    if (array != null) {
      Arrays.fill(array, 0f);
      return;
    }
    float[] zeros = new float[TILE];
    for (int i = 0; i < direct.capacity(); i += TILE) {
      direct.put(i, zeros, 0, Math.min(TILE, direct.capacity() - i));
    }
  }
}
