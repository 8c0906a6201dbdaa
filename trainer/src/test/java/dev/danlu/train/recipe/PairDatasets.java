package dev.danlu.train.recipe;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import dev.danlu.data.sft.PairRecord;
import dev.danlu.data.sft.SftCounts;
import dev.danlu.data.sft.SftExamples;
import dev.danlu.data.sft.SftManifest;
import dev.danlu.data.sft.SftShardMeta;
import dev.danlu.data.sft.SftShardWriter;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;

/**
 * A preference-pair dataset on disk as prep-pairs commits one (manifest with template {@code
 * alpaca2-pairs}, SFT shards with each pair as consecutive chosen / rejected rows), over the tiny
 * model's 40-token vocabulary, with a synthetic but real preference: after a random prompt {@code
 * <s> a b c}, the chosen response {@code x 7 y </s>} contains the target token 7 and the rejected
 * one {@code x z y </s>} (z ≠ 7) does not.
 */
final class PairDatasets {
  static final int TARGET = 7;
  static final int PROMPT = 4;
  static final int PAD = 0;

  private PairDatasets() {}

  /** Pair {@code i} of the seeded sequence: {chosen, rejected}. */
  static SftExamples.Example[] pair(long seed, int i) {
    SplittableRandom r = new SplittableRandom(seed * 1_000_003L + i);
    int[] prompt = {1, tok(r), tok(r), tok(r)};
    int x = tok(r);
    int y = tok(r);
    int z = tok(r);
    return new SftExamples.Example[] {
      example(prompt, x, TARGET, y), example(prompt, x, z, y),
    };
  }

  private static int tok(SplittableRandom r) {
    int t;
    do {
      t = 3 + r.nextInt(37);
    } while (t == TARGET);
    return t;
  }

  private static SftExamples.Example example(int[] prompt, int... response) {
    int n = prompt.length + response.length + 1;
    int[] ids = Arrays.copyOf(prompt, n);
    System.arraycopy(response, 0, ids, prompt.length, response.length);
    ids[n - 1] = 2;
    int[] labels = ids.clone();
    Arrays.fill(labels, 0, prompt.length, SftExamples.IGNORE_INDEX);
    return new SftExamples.Example(ids, labels);
  }

  /** Writes {@code train} pairs (pairs 0..) and {@code validation} pairs (after them). */
  static Path write(Path root, long seed, int train, int validation) throws IOException {
    List<SftExamples.Example[]> t = new ArrayList<>();
    List<SftExamples.Example[]> v = new ArrayList<>();
    for (int i = 0; i < train + validation; i++) {
      (i < train ? t : v).add(pair(seed, i));
    }
    return write(root, t, v, 40, PAD, 16, TinyRun.TOKENIZER_SHA);
  }

  /** Writes given pairs ({chosen, rejected}) as a committed prep-pairs dataset. */
  static Path write(
      Path root,
      List<SftExamples.Example[]> train,
      List<SftExamples.Example[]> validation,
      int vocab,
      int pad,
      int maxSeqLength,
      String tokSha)
      throws IOException {
    Files.createDirectories(root.resolve("shards"));
    SftShardMeta meta = new SftShardMeta(maxSeqLength, tokSha, 1, 2, pad, 64, Map.of());
    List<Manifest.ShardEntry> entries = new ArrayList<>();
    entries.add(shard(root, "shards/train-p000.arrow", "train", meta, train));
    entries.add(shard(root, "shards/validation-p000.arrow", "validation", meta, validation));
    SftManifest m =
        new SftManifest(
            SftManifest.FORMAT_VERSION,
            SftManifest.FORMAT,
            1,
            "2026-12-02T00:00:00Z",
            new SftManifest.Params(
                tokSha,
                "tokenizer.model",
                vocab,
                1,
                2,
                pad,
                maxSeqLength,
                PairRecord.TEMPLATE,
                0.0),
            new SftCounts(
                train.size() + validation.size(), train.size() + validation.size(), 0, 0, 0),
            train.size(),
            validation.size(),
            entries,
            List.of());
    Files.write(root.resolve(ManifestIo.CURRENT), SftManifest.toJson(m));
    return root;
  }

  private static Manifest.ShardEntry shard(
      Path root, String rel, String split, SftShardMeta meta, List<SftExamples.Example[]> pairs)
      throws IOException {
    Path f = root.resolve(rel);
    try (BufferAllocator a = new RootAllocator();
        FileChannel ch =
            FileChannel.open(
                f,
                StandardOpenOption.CREATE,
                StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING);
        SftShardWriter w = new SftShardWriter(a, meta, ch)) {
      for (SftExamples.Example[] p : pairs) {
        for (SftExamples.Example e : p) {
          w.write(e);
        }
      }
    }
    byte[] bytes = Files.readAllBytes(f);
    try {
      String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
      return new Manifest.ShardEntry(
          rel, split, 2L * pairs.size(), bytes.length, sha, "file:/test/pairs");
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
