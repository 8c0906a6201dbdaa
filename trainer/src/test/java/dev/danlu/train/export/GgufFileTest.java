package dev.danlu.train.export;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The GGUF container on its own: what the writer writes the reader reads; lies are refused. */
class GgufFileTest {
  @TempDir Path tmp;

  private Path sample() throws IOException {
    Map<String, Gguf.Value> kv = new LinkedHashMap<>();
    kv.put("general.architecture", Gguf.Value.str("llama"));
    kv.put("a.u32", Gguf.Value.u32(4_000_000_000L));
    kv.put("a.i32", Gguf.Value.i32(-5));
    kv.put("a.f32", Gguf.Value.f32(1.5f));
    kv.put("a.bool", Gguf.Value.bool(true));
    kv.put("a.strs", Gguf.Value.array(Gguf.STRING, List.of("▁the", "<0x0A>", "中文")));
    kv.put("a.f32s", Gguf.Value.array(Gguf.FLOAT32, List.of(-1000f, 0.25f)));
    List<Gguf.TensorSpec> specs =
        List.of(
            new Gguf.TensorSpec("x.weight", new long[] {32, 3}, GgmlType.Q8_0),
            new Gguf.TensorSpec("n.weight", new long[] {5}, GgmlType.F32));
    Path f = tmp.resolve("s.gguf");
    try (GgufWriter w = new GgufWriter(f, kv, specs)) {
      w.begin("x.weight");
      byte[] b = new byte[3 * 34];
      for (int i = 0; i < b.length; i++) {
        b[i] = (byte) i;
      }
      w.write(b, 0, 50);
      w.write(b, 50, b.length - 50);
      w.begin("n.weight");
      w.write(new byte[20], 0, 20);
    }
    return f;
  }

  @Test
  void writtenValuesAndTensorsReadBack() throws IOException {
    GgufFile g = GgufFile.open(sample());
    assertEquals(3, g.version());
    assertEquals(4_000_000_000L, g.get("a.u32").asLong());
    assertEquals(-5L, g.get("a.i32").asLong());
    assertEquals(1.5f, g.get("a.f32").value());
    assertEquals(true, g.get("a.bool").value());
    assertEquals(List.of("▁the", "<0x0A>", "中文"), g.get("a.strs").value());
    assertEquals(List.of(-1000f, 0.25f), g.get("a.f32s").value());
    GgufFile.TensorEntry x = g.tensors().get("x.weight");
    assertEquals(0, x.offset());
    assertEquals(0, x.start() % Gguf.ALIGNMENT);
    assertEquals(128, g.tensors().get("n.weight").offset()); // 102 bytes padded to 32
    byte[] data = g.readTensor("x.weight");
    assertEquals(102, data.length);
    assertEquals(101, data[101]);
    assertArrayEquals(new long[] {5}, g.tensors().get("n.weight").spec().ne());
  }

  @Test
  void aTruncatedFileIsAOneLineErrorNamingIt() throws IOException {
    Path f = sample();
    byte[] all = Files.readAllBytes(f);
    Path cut = tmp.resolve("cut.gguf");
    Files.write(cut, java.util.Arrays.copyOf(all, all.length - 20));
    IOException e = assertThrows(IOException.class, () -> GgufFile.open(cut));
    assertTrue(
        e.getMessage().contains("n.weight") && e.getMessage().contains("truncated"),
        e.getMessage());
    Path header = tmp.resolve("header.gguf");
    Files.write(header, java.util.Arrays.copyOf(all, 40));
    e = assertThrows(IOException.class, () -> GgufFile.open(header));
    assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        InspectCli.run(
            new String[] {cut.toString()},
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    assertEquals(1, code);
    String msg = err.toString(StandardCharsets.UTF_8);
    assertEquals(1, msg.lines().count(), msg);
    assertTrue(msg.startsWith("danlu inspect: " + cut), msg);
    Path notGguf = tmp.resolve("x.gguf");
    Files.writeString(notGguf, "hello world, not a model");
    e = assertThrows(IOException.class, () -> GgufFile.open(notGguf));
    assertTrue(e.getMessage().contains("not a GGUF file"), e.getMessage());
  }

  @Test
  void inspectPrintsMetadataAndTensorTable() throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int code =
        InspectCli.run(
            new String[] {sample().toString()},
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
    assertEquals(0, code);
    String s = out.toString(StandardCharsets.UTF_8);
    assertTrue(s.contains("GGUF v3, 7 metadata keys, 2 tensors"), s);
    assertTrue(s.contains("a.strs") && s.contains("[str x 3]"), s);
    assertTrue(s.contains("x.weight") && s.contains("q8_0") && s.contains("[32, 3]"), s);
  }

  @Test
  void aWriterRefusesShortOrExtraTensorData() throws IOException {
    List<Gguf.TensorSpec> specs = List.of(new Gguf.TensorSpec("t", new long[] {4}, GgmlType.F32));
    Path f = tmp.resolve("bad.gguf");
    GgufWriter w = new GgufWriter(f, Map.of(), specs);
    w.begin("t");
    w.write(new byte[8], 0, 8);
    assertThrows(IllegalStateException.class, w::close);
    GgufWriter w2 = new GgufWriter(tmp.resolve("bad2.gguf"), Map.of(), specs);
    w2.begin("t");
    assertThrows(IllegalStateException.class, () -> w2.write(new byte[20], 0, 20));
    w2.abort();
  }

  @Test
  void exportCliRefusesBadArgumentsInOneLine() {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8);
    PrintStream o = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    assertEquals(2, ExportGgufCli.run(new String[] {"--model", "m", "--type", "q3"}, o, e));
    assertTrue(err.toString(StandardCharsets.UTF_8).contains("q4_k_m"), err.toString());
    err.reset();
    assertEquals(1, ExportGgufCli.run(new String[] {"--model", "m"}, o, e));
    assertTrue(err.toString(StandardCharsets.UTF_8).contains("--output"), err.toString());
    err.reset();
    Path missing = tmp.resolve("nope");
    assertEquals(
        1,
        ExportGgufCli.run(
            new String[] {
              "--model", missing.toString(), "--output", tmp.resolve("o.gguf").toString()
            },
            o,
            e));
    assertEquals(1, err.toString(StandardCharsets.UTF_8).lines().count(), err.toString());
  }
}
