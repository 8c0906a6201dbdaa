package dev.danlu.data.shard;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Writer → files → reader, with the allocator closed after each test so a leak fails it. */
class ShardRoundTripTest {
  static final String TOK = "ab".repeat(32);
  @TempDir Path dir;
  BufferAllocator root;

  @BeforeEach
  void open() {
    root = new RootAllocator();
  }

  @AfterEach
  void close() {
    root.close(); // throws if any buffer leaked
  }

  static List<int[]> randomBlocks(int n, int blockSize, long seed) {
    Random r = new Random(seed);
    List<int[]> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int[] b = new int[blockSize];
      for (int j = 0; j < blockSize; j++) {
        b[j] = r.nextInt(55296);
      }
      out.add(b);
    }
    return out;
  }

  /** A local PartStore: {@code name-pNNN.arrow.tmp}, renamed on commit. */
  static RollingShardWriter.PartStore localStore(Path dir, String name) {
    return new RollingShardWriter.PartStore() {
      Path tmp(int part) {
        return dir.resolve(String.format("%s-p%03d.arrow.tmp", name, part));
      }

      @Override
      public WritableByteChannel openTemp(int part) throws IOException {
        return FileChannel.open(
            tmp(part),
            StandardOpenOption.CREATE,
            StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.WRITE);
      }

      @Override
      public void commit(int part) throws IOException {
        Files.move(
            tmp(part),
            dir.resolve(String.format("%s-p%03d.arrow", name, part)),
            StandardCopyOption.ATOMIC_MOVE,
            StandardCopyOption.REPLACE_EXISTING);
      }

      @Override
      public void abort(int part) {
        try {
          Files.deleteIfExists(tmp(part));
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      }
    };
  }

  static List<RollingShardWriter.Part> write(
      BufferAllocator a, Path dir, String name, ShardMeta meta, List<int[]> blocks, long maxRows)
      throws IOException {
    try (RollingShardWriter<int[]> w =
        RollingShardWriter.blocks(a, meta, maxRows, localStore(dir, name))) {
      for (int[] b : blocks) {
        w.write(b);
      }
      return w.finish();
    }
  }

  static Manifest manifestFor(
      Path dir, String name, ShardMeta meta, List<RollingShardWriter.Part> parts) {
    List<Manifest.ShardEntry> shards = new ArrayList<>();
    for (RollingShardWriter.Part p : parts) {
      shards.add(
          new Manifest.ShardEntry(
              String.format("%s-p%03d.arrow", name, p.part()),
              Manifest.TRAIN,
              p.rows(),
              p.bytes(),
              p.sha256(),
              "file:/src.txt"));
    }
    long rows = parts.stream().mapToLong(RollingShardWriter.Part::rows).sum();
    return new Manifest(
        Manifest.FORMAT_VERSION,
        1,
        "2026-01-01T00:00:00Z",
        new Manifest.Params(
            meta.tokenizerSha256(),
            "t.model",
            55296,
            1,
            2,
            meta.blockSize(),
            "group1000",
            0,
            "replace",
            1 << 20),
        new Manifest.Totals(1, 0, 0, 0, 0, rows, rows, 0, 0, 0, 0),
        shards,
        List.of());
  }

  @Test
  void rollsPartsAndReadsEveryRowBackByGlobalIndex() throws Exception {
    ShardMeta meta = new ShardMeta(16, TOK, 1, 2, 64, Map.of("source_sha256", "cd".repeat(32)));
    List<int[]> blocks = randomBlocks(2500, 16, 1);
    List<RollingShardWriter.Part> parts = write(root, dir, "s", meta, blocks, 1000);
    assertEquals(3, parts.size());
    assertEquals(
        List.of(1000L, 1000L, 500L), parts.stream().map(RollingShardWriter.Part::rows).toList());
    for (RollingShardWriter.Part p : parts) {
      Path f = dir.resolve(String.format("s-p%03d.arrow", p.part()));
      assertEquals(Files.size(f), p.bytes());
      assertEquals(
          HexFormat.of()
              .formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(f))),
          p.sha256());
    }
    assertTrue(Files.list(dir).noneMatch(p -> p.toString().endsWith(".tmp")), "no temp files left");

    Files.write(
        dir.resolve(ManifestIo.CURRENT), ManifestIo.toJson(manifestFor(dir, "s", meta, parts)));
    try (ShardDataset ds =
        ShardDataset.open(root, dir, Manifest.TRAIN, new ShardReader.Expect(16, TOK))) {
      assertEquals(2500, ds.rows());
      int[] row = new int[16];
      // Random order, to exercise batch reloads across shards.
      Random r = new Random(2);
      for (int k = 0; k < 3000; k++) {
        int i = r.nextInt(2500);
        ds.readRow(i, row);
        assertArrayEquals(blocks.get(i), row, "row " + i);
      }
      for (int i = 0; i < 2500; i++) {
        ds.readRow(i, row);
        assertArrayEquals(blocks.get(i), row, "row " + i);
      }
      assertThrows(IndexOutOfBoundsException.class, () -> ds.readRow(2500, row));
    }
  }

  /**
   * The writer's first batch starts at 64 rows and grows by reallocation; rows on either side of
   * every growth step and of the batch boundary must read back, with every batch but the last full.
   */
  @ParameterizedTest
  @ValueSource(ints = {1, 63, 64, 65, 128, 129, 299, 300, 301, 777})
  void batchesGrowFromSmallAndEveryRowReadsBack(int n) throws Exception {
    ShardMeta meta = new ShardMeta(16, TOK, 1, 2, 300, Map.of());
    List<int[]> blocks = randomBlocks(n, 16, n);
    Path sub = Files.createDirectories(dir.resolve("n" + n));
    List<RollingShardWriter.Part> parts = write(root, sub, "g", meta, blocks, 100_000);
    assertEquals(1, parts.size());
    Files.write(
        sub.resolve(ManifestIo.CURRENT), ManifestIo.toJson(manifestFor(sub, "g", meta, parts)));
    try (ShardDataset ds =
        ShardDataset.open(root, sub, Manifest.TRAIN, new ShardReader.Expect(16, TOK))) {
      assertEquals(n, ds.rows());
      int[] row = new int[16];
      for (int i = n - 1; i >= 0; i--) {
        ds.readRow(i, row);
        assertArrayEquals(blocks.get(i), row, "row " + i + " of " + n);
      }
    }
  }

  @Test
  void refusesWrongBlockSizeOrTokenizerNamingFileAndBothValues() throws Exception {
    ShardMeta meta = new ShardMeta(8, TOK, 1, 2, 4, Map.of());
    write(root, dir, "m", meta, randomBlocks(10, 8, 3), 100);
    Path f = dir.resolve("m-p000.arrow");
    ShardFormatException e =
        assertThrows(
            ShardFormatException.class,
            () -> ShardReader.open(root, f, new ShardReader.Expect(512, TOK)).close());
    assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
    assertTrue(
        e.getMessage().contains("block size 8") && e.getMessage().contains("512"), e.getMessage());

    String other = "ef".repeat(32);
    e =
        assertThrows(
            ShardFormatException.class,
            () -> ShardReader.open(root, f, new ShardReader.Expect(8, other)).close());
    assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
    assertTrue(e.getMessage().contains(TOK) && e.getMessage().contains(other), e.getMessage());
  }

  @Test
  void refusesAFileThatIsNotAShard() throws Exception {
    Path f = dir.resolve("junk.arrow");
    Files.writeString(f, "this is not arrow at all, just some text that is long enough");
    ShardFormatException e =
        assertThrows(
            ShardFormatException.class,
            () -> ShardReader.open(root, f, new ShardReader.Expect(8, null)).close());
    assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
  }

  @Test
  void anAbortedPartLeavesNoFile() throws Exception {
    ShardMeta meta = new ShardMeta(4, TOK, 1, 2, 2, Map.of());
    try (RollingShardWriter<int[]> w =
        RollingShardWriter.blocks(root, meta, 3, localStore(dir, "a"))) {
      for (int[] b : randomBlocks(4, 4, 5)) {
        w.write(b);
      }
      // No finish(): simulates a task failing mid-part.
    }
    assertTrue(Files.exists(dir.resolve("a-p000.arrow")), "the full part was committed");
    assertTrue(Files.notExists(dir.resolve("a-p001.arrow")));
    assertTrue(Files.notExists(dir.resolve("a-p001.arrow.tmp")));
  }
}
