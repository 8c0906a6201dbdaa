package dev.danlu.train.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reader and writer round trips, and the header validation that protects against bad files. */
class SafeTensorsTest {
  @TempDir Path tmp;

  static float[] random(int n, long seed) {
    Random r = new Random(seed);
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) r.nextGaussian();
    }
    return a;
  }

  /** Builds a file by hand: header JSON as given, then {@code dataLen} bytes of a pattern. */
  private Path raw(String name, String header, int dataLen) throws IOException {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataLen).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(h.length).put(h);
    for (int i = 0; i < dataLen; i++) {
      b.put((byte) i);
    }
    Path p = tmp.resolve(name);
    Files.write(p, b.array());
    return p;
  }

  @Test
  void roundTripF32KeepsOrderShapesMetadataAndBits() throws IOException {
    Map<String, FloatTensor> m = new LinkedHashMap<>();
    m.put("z.weight", FloatTensor.of(random(12, 1), 3, 4));
    m.put("a.bias", FloatTensor.of(random(5, 2), 5));
    m.put("scalar", FloatTensor.of(new float[] {7.5f}));
    m.put("empty", FloatTensor.of(new float[0], 0, 3));
    Path p = tmp.resolve("t.safetensors");
    SafeTensorsWriter.write(p, m, DType.F32, Map.of("format", "pt"));
    try (SafeTensors st = SafeTensors.open(p)) {
      assertEquals(List.of("z.weight", "a.bias", "scalar", "empty"), List.copyOf(st.names()));
      assertEquals(Map.of("format", "pt"), st.metadata());
      for (var e : m.entrySet()) {
        TensorInfo t = st.info(e.getKey());
        assertArrayEquals(e.getValue().shape(), t.shape());
        assertEquals(DType.F32, t.dtype());
        assertArrayEquals(e.getValue().data(), st.readFloats(e.getKey()));
      }
      assertEquals(0, st.dataStart() % 8, "data section is 8-byte aligned");
    }
  }

  @Test
  void halfPrecisionRoundTripsWithinRounding() throws IOException {
    float[] x = random(1000, 3);
    for (DType dt : new DType[] {DType.F16, DType.BF16}) {
      Path p = tmp.resolve(dt + ".safetensors");
      SafeTensorsWriter.write(p, Map.of("x", FloatTensor.of(x, 10, 100)), dt, Map.of());
      try (SafeTensors st = SafeTensors.open(p)) {
        assertEquals(dt, st.info("x").dtype());
        assertEquals(2000, st.info("x").byteSize());
        float[] y = st.readFloats("x");
        double tol = dt == DType.F16 ? 1.0 / 2048 : 1.0 / 256; // half an ulp, relative
        for (int i = 0; i < x.length; i++) {
          assertTrue(Math.abs(x[i] - y[i]) <= tol * Math.abs(x[i]) + 1e-7, dt + " at " + i);
        }
      }
    }
  }

  @Test
  void readsAcrossMappingWindows() throws IOException {
    // A 7-byte window forces every read to be stitched from several mappings, exercising the
    // code path that >2 GiB tensors take with the real 1 GiB window.
    float[] a = random(101, 4);
    float[] b = random(37, 5);
    Map<String, FloatTensor> m = new LinkedHashMap<>();
    m.put("a", FloatTensor.of(a, 101));
    m.put("b", FloatTensor.of(b, 37));
    Path p = tmp.resolve("w.safetensors");
    SafeTensorsWriter.write(p, m, DType.F32, Map.of());
    try (SafeTensors st = SafeTensors.open(p, 7)) {
      assertArrayEquals(a, st.readFloats("a"));
      assertArrayEquals(b, st.readFloats("b"));
      float[] part = new float[10];
      st.readFloats("a", 50, part, 0, 10);
      assertArrayEquals(java.util.Arrays.copyOfRange(a, 50, 60), part);
    }
  }

  @Test
  void tensorsLargerThanTwoGigabytesReadAcrossRealWindows() throws IOException {
    // A sparse 2.4 GB file: the header is real, the data is holes except a few written floats.
    // Exercises the production 1 GiB windows and byte offsets beyond 2^31 without the disk cost.
    long n = 600_000_000L;
    String header =
        "{\"big\":{\"dtype\":\"F32\",\"shape\":[" + n + "],\"data_offsets\":[0," + 4 * n + "]}}";
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    Path p = tmp.resolve("big.safetensors");
    long dataStart = 8 + h.length;
    long[] at = {(1L << 28) - 1, 1L << 28, (1L << 29) + 7, n - 1}; // around 1 GiB, past 2 GiB
    try (java.nio.channels.FileChannel ch =
        java.nio.channels.FileChannel.open(
            p,
            java.nio.file.StandardOpenOption.CREATE_NEW,
            java.nio.file.StandardOpenOption.WRITE)) {
      ByteBuffer b = ByteBuffer.allocate(8 + h.length).order(ByteOrder.LITTLE_ENDIAN);
      b.putLong(h.length).put(h).flip();
      ch.write(b, 0);
      for (int i = 0; i < at.length; i++) {
        ByteBuffer f = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(i + 0.5f);
        ch.write(f.flip(), dataStart + 4 * at[i]);
      }
    }
    try (SafeTensors st = SafeTensors.open(p)) {
      assertEquals(4 * n, st.info("big").byteSize());
      float[] win = new float[4];
      st.readFloats("big", at[0] - 1, win, 0, 4);
      assertArrayEquals(new float[] {0, 0.5f, 1.5f, 0}, win);
      st.readFloats("big", at[2], win, 0, 1);
      assertEquals(2.5f, win[0]);
      st.readFloats("big", n - 2, win, 0, 2);
      assertEquals(3.5f, win[1]);
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> st.readBytes("big"));
      assertTrue(e.getMessage().contains("too large"), e.getMessage());
    }
  }

  @Test
  void truncatedFileNamesTensorAndSizes() throws IOException {
    Path p = tmp.resolve("full.safetensors");
    Map<String, FloatTensor> m = new LinkedHashMap<>();
    m.put("first", FloatTensor.of(random(10, 6), 10));
    m.put("last", FloatTensor.of(random(10, 7), 10));
    SafeTensorsWriter.write(p, m, DType.F32, Map.of());
    byte[] all = Files.readAllBytes(p);
    Path cut = tmp.resolve("cut.safetensors");
    Files.write(cut, java.util.Arrays.copyOf(all, all.length - 4));
    IOException e = assertThrows(IOException.class, () -> SafeTensors.open(cut));
    assertTrue(e.getMessage().contains("cut.safetensors"), e.getMessage());
    assertTrue(e.getMessage().contains("'last'"), e.getMessage());
    assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    assertTrue(e.getMessage().contains("80") && e.getMessage().contains("76"), e.getMessage());
    Path tiny = tmp.resolve("tiny.safetensors");
    Files.write(tiny, java.util.Arrays.copyOf(all, 20));
    e = assertThrows(IOException.class, () -> SafeTensors.open(tiny));
    assertTrue(e.getMessage().contains("header length"), e.getMessage());
  }

  @Test
  void lyingHeadersAreRejected() throws IOException {
    String ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    try (SafeTensors st = SafeTensors.open(raw("ok", ok, 8))) {
      assertEquals(2, st.readFloats("a").length);
    }
    assertMessage(
        raw("size", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8),
        "needs 12 bytes");
    assertMessage(
        raw("dtype", "{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
        "unsupported dtype 'Q4'");
    assertMessage(
        raw(
            "overlap",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
            8),
        "overlap");
    assertMessage(
        raw("hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "hole");
    assertMessage(raw("trailing", ok, 12), "trailing");
    assertMessage(raw("json", "{\"a\":{\"dtype\":", 8), "not valid JSON");
    assertMessage(
        raw(
            "dup",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
            8),
        "Duplicate field 'a'");
    assertMessage(raw("array", "[1,2,3]", 0), "must be a JSON object");
    assertMessage(
        raw("neg", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8),
        "non-negative");
    assertMessage(
        raw(
            "meta",
            "{\"__metadata__\":{\"k\":1},\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                + "\"data_offsets\":[0,8]}}",
            8),
        "must be a string");
    ByteBuffer huge = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40);
    Path hp = tmp.resolve("huge");
    Files.write(hp, huge.array());
    assertMessage(hp, "header length");
  }

  private static void assertMessage(Path p, String fragment) {
    IOException e = assertThrows(IOException.class, () -> SafeTensors.open(p), p.toString());
    assertTrue(e.getMessage().contains(fragment), e.getMessage());
    assertTrue(e.getMessage().contains(p.getFileName().toString()), e.getMessage());
  }

  @Test
  void missingTensorAndWrongTypeAreClearErrors() throws IOException {
    Path p = tmp.resolve("m.safetensors");
    SafeTensorsWriter.write(
        p, Map.of("x", FloatTensor.of(new float[] {1}, 1)), DType.F32, Map.of());
    try (SafeTensors st = SafeTensors.open(p)) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> st.info("model.norm.weight"));
      assertTrue(
          e.getMessage().contains("'model.norm.weight'")
              && e.getMessage().contains("m.safetensors"));
    }
  }

  @Test
  void writerChecksCompletenessAndLeavesNoPartialFile() throws IOException {
    Path p = tmp.resolve("partial.safetensors");
    SafeTensorsWriter w = SafeTensorsWriter.builder(p).declare("a", 4).declare("b", 2).open();
    w.writeFloats(new float[] {1, 2, 3});
    IOException e = assertThrows(IOException.class, w::close);
    assertTrue(e.getMessage().contains("'a' incomplete"), e.getMessage());
    assertTrue(Files.notExists(p));
    try (var s = Files.list(tmp)) {
      assertEquals(0, s.count(), "temporary file removed");
    }
    SafeTensorsWriter w2 = SafeTensorsWriter.builder(p).declare("a", 1).open();
    assertThrows(IllegalStateException.class, () -> w2.writeFloats(new float[] {1, 2}));
    w2.abort();
  }

  @Test
  void streamingPiecesMayCrossTensorBoundaries() throws IOException {
    float[] all = random(30, 8);
    Path p = tmp.resolve("s.safetensors");
    try (SafeTensorsWriter w =
        SafeTensorsWriter.builder(p)
            .declare("a", 2, 5)
            .setDType(DType.BF16)
            .declare("b", 20)
            .open()) {
      w.writeFloats(all, 0, 7);
      w.writeFloats(all, 7, 23);
    }
    try (SafeTensors st = SafeTensors.open(p)) {
      assertArrayEquals(java.util.Arrays.copyOfRange(all, 0, 10), st.readFloats("a"));
      assertEquals(DType.BF16, st.info("b").dtype());
      float[] b = st.readFloats("b");
      for (int i = 0; i < 20; i++) {
        assertEquals(all[10 + i], b[i], Math.abs(all[10 + i]) / 128);
      }
    }
  }
}
