package dev.danlu.train.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.checkpoint.SafeTensors;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * float32 -> float16 / bfloat16 rounding against torch 1.13 ({@code x.to(torch.float16)}, {@code
 * x.to(torch.bfloat16)}) on the edge cases in {@code reference/rounding.safetensors} (ties to even,
 * f16 subnormals and the tie at half the smallest one, overflow to infinity at 65520, float
 * subnormals, infinities, NaNs with payloads and signs) and 4000 random bit patterns and values;
 * and the 16-bit -> float32 widening the model uses (ND4J's typed assign) against the exact
 * decoding, for all 65536 patterns.
 */
class HalfRoundingTest {
  static final Path FIXTURE = Path.of("src/test/resources/reference/rounding.safetensors");

  @Test
  void roundingMatchesTorchBitForBit() throws IOException {
    try (SafeTensors st = SafeTensors.open(FIXTURE)) {
      ByteBuffer in = st.readBytes("input").order(ByteOrder.LITTLE_ENDIAN);
      long[] f16 = st.readLongs("f16_bits");
      long[] bf16 = st.readLongs("bf16_bits");
      float[] x = new float[f16.length];
      for (int i = 0; i < x.length; i++) {
        x[i] = Float.intBitsToFloat(in.getInt(i * 4));
      }
      int nans = 0;
      int ties = 0;
      for (int i = 0; i < x.length; i++) {
        String where = "input " + i + " bits " + Integer.toHexString(in.getInt(i * 4));
        assertEquals(f16[i] & 0xffff, HalfFloats.floatToF16(x[i]) & 0xffff, where + " -> float16");
        if (Float.isNaN(x[i])) {
          // torch 1.13's vectorized CPU cast writes 0xffff for every NaN, c10::BFloat16 0x7fc0:
          // both are NaN, which is all a NaN weight can promise; we write c10's pattern
          assertTrue(Float.isNaN(HalfFloats.bf16ToFloat((int) bf16[i])), where);
          assertEquals(0x7fc0, HalfFloats.floatToBf16(x[i]) & 0xffff, where);
          nans++;
        } else {
          assertEquals(
              bf16[i] & 0xffff, HalfFloats.floatToBf16(x[i]) & 0xffff, where + " -> bfloat16");
        }
        int low = Float.floatToRawIntBits(x[i]) & 0x1fff;
        ties += low == 0x1000 ? 1 : 0;
      }
      assertTrue(nans >= 5, "NaN cases present: " + nans);
      assertTrue(ties >= 4, "float16 ties present: " + ties);
      // the array path (what the weight loader uses) writes the same bits
      INDArray h = HalfArrays.fromFloats(x, new long[] {x.length}, DataType.HALF);
      INDArray b = HalfArrays.fromFloats(x, new long[] {x.length}, DataType.BFLOAT16);
      ByteBuffer hb = h.data().asNio().order(ByteOrder.nativeOrder());
      ByteBuffer bb = b.data().asNio().order(ByteOrder.nativeOrder());
      for (int i = 0; i < x.length; i++) {
        assertEquals(f16[i] & 0xffff, hb.getShort(i * 2) & 0xffff, "array float16 " + i);
        if (!Float.isNaN(x[i])) {
          assertEquals(bf16[i] & 0xffff, bb.getShort(i * 2) & 0xffff, "array bfloat16 " + i);
        }
      }
    }
  }

  @Test
  void widenedValuesAreExactForEveryPattern() {
    ByteBuffer all = ByteBuffer.allocate(2 << 16).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < 1 << 16; i++) {
      all.putShort((short) i);
    }
    all.flip();
    for (DataType t : new DataType[] {DataType.HALF, DataType.BFLOAT16}) {
      INDArray h = HalfArrays.fromBits(all, new long[] {256, 256}, t);
      INDArray f = org.nd4j.linalg.factory.Nd4j.create(DataType.FLOAT, 256, 256);
      HalfArrays.upcast(h, f);
      float[] got = f.reshape(-1).toFloatVector();
      // the CPU fast path for binary16 and ND4J's assign (the CUDA path) agree bit for bit,
      // also into an offset view like the scratch's
      INDArray big = org.nd4j.linalg.factory.Nd4j.create(DataType.FLOAT, 3 * 65536);
      INDArray view =
          big.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(65536, 2 * 65536))
              .reshape('c', 256, 256);
      HalfArrays.upcastNd4j(h, view);
      float[] viaNd4j = view.reshape(-1).toFloatVector();
      for (int i = 0; i < got.length; i++) {
        assertEquals(Float.floatToIntBits(viaNd4j[i]), Float.floatToIntBits(got[i]), t + " " + i);
      }
      if (t == DataType.HALF) {
        HalfArrays.upcastF16Java(h, view);
        assertEquals(0f, big.getFloat(65535), "nothing written before the view");
        assertEquals(0f, big.getFloat(2 * 65536), "nothing written after the view");
        float[] viaJava = view.reshape(-1).toFloatVector();
        for (int i = 0; i < got.length; i++) {
          assertEquals(Float.floatToIntBits(got[i]), Float.floatToIntBits(viaJava[i]), "java " + i);
        }
      }
      for (int i = 0; i < got.length; i++) {
        float want = HalfArrays.value((short) i, t);
        if (Float.isNaN(want)) {
          assertTrue(Float.isNaN(got[i]), t + " pattern " + Integer.toHexString(i));
        } else {
          assertEquals(
              Float.floatToIntBits(want),
              Float.floatToIntBits(got[i]),
              t + " pattern " + Integer.toHexString(i));
          // and the pattern is the nearest-even rounding of its own value (a fixed point)
          assertEquals(i, HalfArrays.bits(want, t) & 0xffff, t + " round trip");
        }
      }
    }
  }
}
