package dev.danlu.data.sft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import dev.danlu.data.shard.RollingShardWriter;
import dev.danlu.data.shard.ShardFormatException;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Write examples with the rolling writer, commit a manifest, read them back by random row. */
class SftShardsTest {
  @TempDir Path tmp;

  static final String SHA = "ab".repeat(32);

  static List<SftExamples.Example> examples(int n, int maxLen, long seed) {
    Random r = new Random(seed);
    List<SftExamples.Example> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int len = 1 + r.nextInt(maxLen);
      int prompt = r.nextInt(len);
      int[] ids = new int[len];
      int[] labels = new int[len];
      for (int j = 0; j < len; j++) {
        ids[j] = r.nextInt(55296);
        labels[j] = j < prompt ? SftExamples.IGNORE_INDEX : ids[j];
      }
      out.add(new SftExamples.Example(ids, labels));
    }
    return out;
  }

  static List<Manifest.ShardEntry> write(
      BufferAllocator alloc,
      Path root,
      String split,
      String prefix,
      List<SftExamples.Example> ex,
      int maxLen,
      int batchRows,
      long partRows)
      throws IOException {
    SftShardMeta meta =
        new SftShardMeta(maxLen, SHA, 1, 2, 32000, batchRows, Map.of("split", split));
    String dir = "shards/test/" + split + "/";
    Files.createDirectories(root.resolve(dir));
    List<Manifest.ShardEntry> out = new ArrayList<>();
    try (RollingShardWriter<SftExamples.Example> w =
        new RollingShardWriter<>(
            channel -> new SftShardWriter(alloc, meta, channel),
            partRows,
            new RollingShardWriter.PartStore() {
              Path tmp(int part) {
                return root.resolve(dir + "." + prefix + part + ".tmp");
              }

              @Override
              public WritableByteChannel openTemp(int part) throws IOException {
                return FileChannel.open(
                    tmp(part), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
              }

              @Override
              public void commit(int part) throws IOException {
                Files.move(tmp(part), root.resolve(dir + prefix + part + ".arrow"));
              }

              @Override
              public void abort(int part) {}
            })) {
      for (SftExamples.Example e : ex) {
        w.write(e);
      }
      for (RollingShardWriter.Part p : w.finish()) {
        out.add(
            new Manifest.ShardEntry(
                dir + prefix + p.part() + ".arrow", split, p.rows(), p.bytes(), p.sha256(), "src"));
      }
    }
    return out;
  }

  private Path dataset(List<SftExamples.Example> train, List<SftExamples.Example> val, int maxLen)
      throws IOException {
    Path root = tmp.resolve("ds");
    List<Manifest.ShardEntry> shards = new ArrayList<>();
    try (BufferAllocator alloc = new RootAllocator()) {
      shards.addAll(write(alloc, root, "train", "a", train, maxLen, 7, 30));
      shards.addAll(write(alloc, root, "validation", "b", val, maxLen, 7, 30));
    }
    SftManifest m =
        new SftManifest(
            SftManifest.FORMAT_VERSION,
            SftManifest.FORMAT,
            1,
            "now",
            new SftManifest.Params(SHA, "t.model", 55296, 1, 2, 32000, maxLen, "alpaca2", 0.1),
            new SftCounts(train.size() + val.size(), train.size() + val.size(), 0, 0, 0),
            train.size(),
            val.size(),
            shards,
            List.of());
    Files.write(root.resolve(ManifestIo.CURRENT), SftManifest.toJson(m));
    return root;
  }

  @Test
  void roundTripWithShuffledRandomAccess() throws IOException {
    List<SftExamples.Example> train = examples(100, 40, 1);
    List<SftExamples.Example> val = examples(9, 40, 2);
    Path root = dataset(train, val, 40);
    assertEquals(40, SftShards.maxSeqLength(root));
    assertEquals(32000, SftShards.padId(root));
    try (SftExamples ds = SftShards.open(root, "train", SHA)) {
      assertEquals(100, ds.rows());
      List<Integer> order = new ArrayList<>();
      for (int i = 0; i < 100; i++) {
        order.add(i);
      }
      java.util.Collections.shuffle(order, new Random(3));
      for (int i : order) {
        SftExamples.Example e = ds.read(i);
        assertArrayEquals(train.get(i).inputIds(), e.inputIds(), "row " + i);
        assertArrayEquals(train.get(i).labels(), e.labels(), "row " + i);
      }
      assertThrows(IndexOutOfBoundsException.class, () -> ds.read(100));
    }
    try (SftExamples ds = SftShards.open(root, "validation", null)) {
      assertEquals(9, ds.rows());
      assertArrayEquals(val.get(8).labels(), ds.read(8).labels());
    }
  }

  @Test
  void refusesAnotherTokenizerAndPrepDatasets() throws IOException {
    Path root = dataset(examples(5, 10, 1), List.of(), 10);
    ShardFormatException e =
        assertThrows(
            ShardFormatException.class, () -> SftShards.open(root, "train", "cd".repeat(32)));
    assertTrue(e.getMessage().contains("re-run prep-sft with this tokenizer"), e.getMessage());
    Files.writeString(
        root.resolve(ManifestIo.CURRENT), "{\"formatVersion\":1,\"params\":{\"blockSize\":8}}");
    IOException e2 = assertThrows(IOException.class, () -> SftShards.open(root, "train", null));
    assertTrue(e2.getMessage().contains("made by `danlu prep`"), e2.getMessage());
  }

  @Test
  void builderDropsFullyMaskedAndCountsTruncation() {
    // a tokenizer of one id per character makes lengths easy to reason about
    dev.danlu.data.tokenizer.TextTokenizer tok = new CharTokenizer();
    String prompt = Alpaca2Template.prompt("ab");
    int promptLen = prompt.length() + 1;
    SftCounts.Tally t = new SftCounts.Tally();
    SftExampleBuilder fits = new SftExampleBuilder(tok, promptLen + 3);
    SftExamples.Example e = t.add(fits.build(new SftRecord("ab", "", "xy")), promptLen + 3);
    assertEquals(promptLen + 3, e.length());
    assertEquals(2, e.inputIds()[promptLen + 2]); // EOS kept
    assertEquals(2, e.labels()[promptLen + 2]);
    assertEquals(SftExamples.IGNORE_INDEX, e.labels()[promptLen - 1]);
    assertEquals(1, e.inputIds()[0]);
    SftExampleBuilder cutEos = new SftExampleBuilder(tok, promptLen + 2);
    e = t.add(cutEos.build(new SftRecord("ab", "", "xy")), promptLen + 2);
    assertEquals('y', e.labels()[promptLen + 1]); // EOS cut
    SftExampleBuilder full = new SftExampleBuilder(tok, promptLen);
    assertTrue(full.build(new SftRecord("ab", "", "xy")).fullyMasked());
    t.add(full.build(new SftRecord("ab", "", "xy")), promptLen);
    t.bad();
    assertEquals(new SftCounts(4, 2, 1, 1, 1), t.counts());
  }

  /** One id per UTF-16 char (ids 3..), BOS 1, EOS 2. */
  static final class CharTokenizer implements dev.danlu.data.tokenizer.TextTokenizer {
    @Override
    public int[] encode(String text) {
      return text.chars().toArray();
    }

    @Override
    public String decode(int[] ids) {
      return new String(ids, 0, ids.length);
    }

    @Override
    public String piece(int id) {
      return Character.toString(id);
    }

    @Override
    public int vocabSize() {
      return 65536;
    }

    @Override
    public int bosId() {
      return 1;
    }

    @Override
    public int eosId() {
      return 2;
    }

    @Override
    public int padId() {
      return -1;
    }

    @Override
    public String sha256() {
      return SHA;
    }

    @Override
    public void close() {}
  }
}
