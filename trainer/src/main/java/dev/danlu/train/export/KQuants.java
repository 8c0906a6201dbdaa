package dev.danlu.train.export;

import static dev.danlu.train.export.Quantize.putI16;

import dev.danlu.train.tensor.HalfFloats;

/**
 * ggml's reference k-quantizers for super-blocks of 256 ({@code ggml/src/ggml-quants.c}: {@code
 * quantize_row_q4_K_ref}, {@code q5_K_ref}, {@code q6_K_ref} with their helpers {@code
 * make_qkx2_quants}, {@code make_qx_quants} and {@code nearest_int}), the path {@code
 * llama-quantize} takes without an importance matrix. Every expression keeps the C source's float32
 * operation order (see {@link Quantize} for why that makes the bytes equal). One instance holds the
 * scratch arrays of one thread.
 */
final class KQuants {
  private static final float GROUP_MAX_EPS = 1e-15f;

  private final int[] l = new int[256];
  private final int[] laux = new int[32];
  private final float[] weights = new float[32];
  private final float[] scales = new float[16];
  private final float[] mins = new float[8];
  private final float[] theMin = new float[1];

  /**
   * ggml's nearest_int: adds 1.5 * 2^23 so the float's mantissa holds the rounded integer (round to
   * nearest even), valid for |f| <= 2^22 as the C version asserts.
   */
  static int nearestInt(float f) {
    float val = f + 12582912.f;
    int i = Float.floatToRawIntBits(val);
    return (i & 0x007fffff) - 0x00400000;
  }

  /** block_q4_K: fp16 d, fp16 dmin, uint8 scales[12], uint8 qs[128] = 144 bytes. */
  void q4K(float[] x, int xo, byte[] y, int yo) {
    scaleMinBlock(x, xo, y, yo, 15, -1.f, 0.1f, 20);
    int q = yo + 16;
    for (int j = 0; j < 256; j += 64) {
      for (int i = 0; i < 32; i++) {
        y[q + i] = (byte) (l[j + i] | (l[j + i + 32] << 4));
      }
      q += 32;
    }
  }

  /** block_q5_K: fp16 d, fp16 dmin, uint8 scales[12], uint8 qh[32], uint8 qs[128] = 176 bytes. */
  void q5K(float[] x, int xo, byte[] y, int yo) {
    scaleMinBlock(x, xo, y, yo, 31, -0.5f, 0.1f, 15);
    int qh = yo + 16;
    int ql = yo + 48;
    for (int i = 0; i < 32; i++) {
      y[qh + i] = 0;
    }
    int m1 = 1;
    int m2 = 2;
    for (int n = 0; n < 256; n += 64) {
      for (int j = 0; j < 32; j++) {
        int l1 = l[n + j];
        if (l1 > 15) {
          l1 -= 16;
          y[qh + j] |= (byte) m1;
        }
        int l2 = l[n + j + 32];
        if (l2 > 15) {
          l2 -= 16;
          y[qh + j] |= (byte) m2;
        }
        y[ql + j] = (byte) (l1 | (l2 << 4));
      }
      m1 <<= 2;
      m2 <<= 2;
      ql += 32;
    }
  }

  /**
   * The shared first half of q4_K and q5_K: per 32-element sub-block a scale and a min by
   * make_qkx2_quants, both quantized to 6 bits against the super-block's largest, then every
   * element re-quantized with the stored (fp16-rounded) scales into {@link #l}.
   */
  private void scaleMinBlock(
      float[] x, int xo, byte[] y, int yo, int nmax, float rmin, float rdelta, int nstep) {
    float maxScale = 0;
    float maxMin = 0;
    for (int j = 0; j < 8; j++) {
      int s = xo + 32 * j;
      float sumX2 = 0;
      for (int i = 0; i < 32; i++) {
        sumX2 += x[s + i] * x[s + i];
      }
      float avX = (float) Math.sqrt(sumX2 / 32);
      for (int i = 0; i < 32; i++) {
        weights[i] = avX + Math.abs(x[s + i]);
      }
      scales[j] = makeQkx2Quants(32, nmax, x, s, weights, 32 * j, rmin, rdelta, nstep);
      mins[j] = theMin[0];
      if (scales[j] > maxScale) {
        maxScale = scales[j];
      }
      if (mins[j] > maxMin) {
        maxMin = mins[j];
      }
    }
    float invScale = maxScale > 0 ? 63.f / maxScale : 0.f;
    float invMin = maxMin > 0 ? 63.f / maxMin : 0.f;
    int sc = yo + 4; // scales[12]
    for (int j = 0; j < 8; j++) {
      int ls = Math.min(63, nearestInt(invScale * scales[j]) & 0xff);
      int lm = Math.min(63, nearestInt(invMin * mins[j]) & 0xff);
      if (j < 4) {
        y[sc + j] = (byte) ls;
        y[sc + j + 4] = (byte) lm;
      } else {
        y[sc + j + 4] = (byte) ((ls & 0xF) | ((lm & 0xF) << 4));
        y[sc + j - 4] |= (byte) ((ls >> 4) << 6);
        y[sc + j] |= (byte) ((lm >> 4) << 6);
      }
    }
    short dBits = HalfFloats.floatToF16(maxScale / 63.f);
    short dminBits = HalfFloats.floatToF16(maxMin / 63.f);
    putI16(y, yo, dBits);
    putI16(y, yo + 2, dminBits);
    float dAll = HalfFloats.f16ToFloat(dBits);
    float dminAll = HalfFloats.f16ToFloat(dminBits);
    for (int j = 0; j < 8; j++) {
      int scale;
      int min;
      if (j < 4) {
        scale = y[sc + j] & 63;
        min = y[sc + j + 4] & 63;
      } else {
        scale = (y[sc + j + 4] & 0xF) | (((y[sc + j - 4] & 0xff) >> 6) << 4);
        min = ((y[sc + j + 4] & 0xff) >> 4) | (((y[sc + j] & 0xff) >> 6) << 4);
      }
      float d = dAll * scale;
      if (d == 0f) {
        continue; // keeps make_qkx2_quants' levels, as the C code does
      }
      float dm = dminAll * min;
      for (int i = 0; i < 32; i++) {
        int q = nearestInt((x[xo + 32 * j + i] + dm) / d);
        l[32 * j + i] = Math.max(0, Math.min(nmax, q));
      }
    }
  }

  /**
   * make_qkx2_quants: levels {@code l[lo..lo+n)} in [0, nmax] and a scale (returned) and min
   * ({@link #theMin}, negated as in C) minimizing the weighted squared error, searching nstep+1
   * candidate scales.
   */
  private float makeQkx2Quants(
      int n, int nmax, float[] x, int xo, float[] w, int lo, float rmin, float rdelta, int nstep) {
    float min = x[xo];
    float max = x[xo];
    float sumW = w[0];
    float sumX = sumW * x[xo];
    for (int i = 1; i < n; i++) {
      float xi = x[xo + i];
      if (xi < min) {
        min = xi;
      }
      if (xi > max) {
        max = xi;
      }
      float wi = w[i];
      sumW += wi;
      sumX += wi * xi;
    }
    if (min > 0) {
      min = 0;
    }
    if (max == min) {
      for (int i = 0; i < n; i++) {
        l[lo + i] = 0;
      }
      theMin[0] = -min;
      return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float bestError = 0;
    for (int i = 0; i < n; i++) {
      int q = nearestInt(iscale * (x[xo + i] - min));
      l[lo + i] = Math.max(0, Math.min(nmax, q));
      float diff = scale * l[lo + i] + min - x[xo + i];
      diff = diff * diff;
      bestError += w[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
      iscale = (rmin + rdelta * is + nmax) / (max - min);
      float sumL = 0;
      float sumL2 = 0;
      float sumXl = 0;
      for (int i = 0; i < n; i++) {
        int q = nearestInt(iscale * (x[xo + i] - min));
        q = Math.max(0, Math.min(nmax, q));
        laux[i] = q;
        float wi = w[i];
        sumL += wi * q;
        sumL2 += wi * q * q;
        sumXl += wi * q * x[xo + i];
      }
      float det = sumW * sumL2 - sumL * sumL;
      if (det > 0) {
        float thisScale = (sumW * sumXl - sumX * sumL) / det;
        float thisMin = (sumL2 * sumX - sumL * sumXl) / det;
        if (thisMin > 0) {
          thisMin = 0;
          thisScale = sumXl / sumL2;
        }
        float curError = 0;
        for (int i = 0; i < n; i++) {
          float diff = thisScale * laux[i] + thisMin - x[xo + i];
          diff = diff * diff;
          curError += w[i] * diff;
        }
        if (curError < bestError) {
          System.arraycopy(laux, 0, l, lo, n);
          bestError = curError;
          scale = thisScale;
          min = thisMin;
        }
      }
    }
    theMin[0] = -min;
    return scale;
  }

  /** block_q6_K: uint8 ql[128], uint8 qh[64], int8 scales[16], fp16 d = 210 bytes. */
  void q6K(float[] x, int xo, byte[] y, int yo) {
    float maxScale = 0;
    float maxAbsScale = 0;
    for (int ib = 0; ib < 16; ib++) {
      float scale = makeQxQuants(16, 32, x, xo + 16 * ib, 16 * ib);
      scales[ib] = scale;
      float absScale = Math.abs(scale);
      if (absScale > maxAbsScale) {
        maxAbsScale = absScale;
        maxScale = scale;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) {
      java.util.Arrays.fill(y, yo, yo + 210, (byte) 0);
      return;
    }
    float iscale = -128.f / maxScale;
    short dBits = HalfFloats.floatToF16(1 / iscale);
    putI16(y, yo + 208, dBits);
    int sc = yo + 192;
    for (int ib = 0; ib < 16; ib++) {
      y[sc + ib] = (byte) Math.min(127, nearestInt(iscale * scales[ib]));
    }
    float dAll = HalfFloats.f16ToFloat(dBits);
    for (int j = 0; j < 16; j++) {
      float d = dAll * y[sc + j];
      if (d == 0f) {
        continue;
      }
      for (int i = 0; i < 16; i++) {
        int q = nearestInt(x[xo + 16 * j + i] / d);
        q = Math.max(-32, Math.min(31, q));
        l[16 * j + i] = q + 32;
      }
    }
    int ql = yo;
    int qh = yo + 128;
    for (int j = 0; j < 256; j += 128) {
      for (int i = 0; i < 32; i++) {
        int q1 = l[j + i] & 0xF;
        int q2 = l[j + i + 32] & 0xF;
        int q3 = l[j + i + 64] & 0xF;
        int q4 = l[j + i + 96] & 0xF;
        y[ql + i] = (byte) (q1 | (q3 << 4));
        y[ql + i + 32] = (byte) (q2 | (q4 << 4));
        y[qh + i] =
            (byte)
                ((l[j + i] >> 4)
                    | ((l[j + i + 32] >> 4) << 2)
                    | ((l[j + i + 64] >> 4) << 4)
                    | ((l[j + i + 96] >> 4) << 6));
      }
      ql += 64;
      qh += 32;
    }
  }

  /**
   * make_qx_quants with rmse_type 1 and no importance weights (weights x²): symmetric levels in
   * [-nmax, nmax) stored as {@code l + nmax} at {@code l[lo..]}, returning the scale; tries 18
   * scales around nmax / max.
   */
  private float makeQxQuants(int n, int nmax, float[] x, int xo, int lo) {
    float max = 0;
    float amax = 0;
    for (int i = 0; i < n; i++) {
      float ax = Math.abs(x[xo + i]);
      if (ax > amax) {
        amax = ax;
        max = x[xo + i];
      }
    }
    if (amax < GROUP_MAX_EPS) {
      for (int i = 0; i < n; i++) {
        l[lo + i] = 0;
      }
      return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; i++) {
      float xi = x[xo + i];
      int q = nearestInt(iscale * xi);
      q = Math.max(-nmax, Math.min(nmax - 1, q));
      l[lo + i] = q + nmax;
      float w = xi * xi;
      sumlx += w * xi * q;
      suml2 += w * q * q;
    }
    float scale = suml2 != 0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
      if (is == 0) {
        continue;
      }
      iscale = -(nmax + 0.1f * is) / max;
      sumlx = 0;
      suml2 = 0;
      for (int i = 0; i < n; i++) {
        float xi = x[xo + i];
        int q = nearestInt(iscale * xi);
        q = Math.max(-nmax, Math.min(nmax - 1, q));
        float w = xi * xi;
        sumlx += w * xi * q;
        suml2 += w * q * q;
      }
      if (suml2 > 0 && sumlx * sumlx > best * suml2) {
        for (int i = 0; i < n; i++) {
          int q = nearestInt(iscale * x[xo + i]);
          l[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, q));
        }
        scale = sumlx / suml2;
        best = scale * sumlx;
      }
    }
    return scale;
  }
}
