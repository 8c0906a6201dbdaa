package dev.danlu.data.manifest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ManifestIoTest {
  @TempDir Path dir;

  static Manifest sample() {
    return new Manifest(
        Manifest.FORMAT_VERSION,
        12,
        "2026-11-22T01:00:00Z",
        new Manifest.Params(
            "aa".repeat(32),
            "tokenizer.model",
            55296,
            1,
            2,
            512,
            "group1000",
            0.001,
            "replace",
            8 << 20),
        new Manifest.Totals(2, 1, 300, 10, 900, 1, 1, 0, 388, 3, 0),
        List.of(
            new Manifest.ShardEntry(
                "shards/train/x-s00000-p000.arrow",
                "train",
                1,
                2400,
                "bb".repeat(32),
                "file:/c/a.txt")),
        List.of(
            new Manifest.SourceEntry(
                "file:/c/a.txt",
                200,
                1700000000000L,
                "cc".repeat(32),
                "ok",
                null,
                10,
                900,
                1,
                388,
                3,
                17,
                0,
                List.of("shards/train/x-s00000-p000.arrow")),
            new Manifest.SourceEntry(
                "file:/c/b.txt",
                100,
                1700000000000L,
                null,
                "skipped",
                "binary: NUL byte at offset 5",
                0,
                0,
                0,
                0,
                0,
                -1,
                0,
                List.of())));
  }

  @Test
  void roundTripsAndNamesVersions() throws IOException {
    Manifest m = sample();
    assertEquals(m, ManifestIo.fromJson(ManifestIo.toJson(m), "x"));
    assertEquals("manifests/manifest-000012.json", ManifestIo.versionPath(12));
    String json = new String(ManifestIo.toJson(m), StandardCharsets.UTF_8);
    assertTrue(json.contains("\"tokenizerSha256\""), json);
    assertTrue(json.contains("\"droppedTokens\" : 388"), json);
  }

  @Test
  void rejectsUnknownKeysOtherFormatVersionsAndNamesTheFile() {
    String json = new String(ManifestIo.toJson(sample()), StandardCharsets.UTF_8);
    IOException e =
        assertThrows(
            IOException.class,
            () ->
                ManifestIo.fromJson(
                    json.replace("\"version\"", "\"versoin\"").getBytes(StandardCharsets.UTF_8),
                    "m.json"));
    assertTrue(e.getMessage().startsWith("m.json"), e.getMessage());
    e =
        assertThrows(
            IOException.class,
            () ->
                ManifestIo.fromJson(
                    json.replace("\"formatVersion\" : 2", "\"formatVersion\" : 9")
                        .getBytes(StandardCharsets.UTF_8),
                    "m.json"));
    assertTrue(e.getMessage().contains("format version 9"), e.getMessage());
  }

  @Test
  void readsFormatVersion1WithOneSourcePerShardAndNoGroups() throws IOException {
    String v2 = new String(ManifestIo.toJson(sample()), StandardCharsets.UTF_8);
    assertTrue(v2.contains("\"sources\" : [ \"file:/c/a.txt\" ]"), v2);
    assertTrue(v2.contains("\"group\" : null"), v2);
    String v1 =
        v2.replace("\"formatVersion\" : 2", "\"formatVersion\" : 1")
            .replace("\"sources\" : [ \"file:/c/a.txt\" ]", "\"source\" : \"file:/c/a.txt\"")
            .replace(",\n    \"group\" : null", "");
    assertTrue(!v1.contains("\"group\"") && v1.contains("\"source\" : "), v1);
    Manifest m = ManifestIo.fromJson(v1.getBytes(StandardCharsets.UTF_8), "v1.json");
    assertEquals(1, m.formatVersion());
    assertEquals(List.of("file:/c/a.txt"), m.shards().get(0).sources());
    assertEquals(null, m.sources().get(0).group());
    assertEquals(sample().sources(), m.sources());
    assertEquals(sample().shards(), m.shards());
  }

  @Test
  void readCurrentExplainsAMissingDataset() throws IOException {
    NoSuchFileException e =
        assertThrows(NoSuchFileException.class, () -> ManifestIo.readCurrent(dir));
    assertTrue(e.getMessage().contains("danlu prep"), e.getMessage());
    Files.write(dir.resolve(ManifestIo.CURRENT), ManifestIo.toJson(sample()));
    assertEquals(12, ManifestIo.readCurrent(dir).version());
  }
}
