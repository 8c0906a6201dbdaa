package dev.danlu.data.sft;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.shard.ShardFormatException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;

/**
 * Opens one split of a committed instruction dataset (made by {@code danlu prep-sft}) as {@link
 * SftExamples}: every shard of the split in manifest order, opened and checked up front (format,
 * max length, tokenizer hash, row count against the manifest); row {@code i} is found by binary
 * search over cumulative row counts. The instance owns its Arrow allocator and closes it.
 */
public final class SftShards implements SftExamples {
  /** What the trainer needs to pad a batch: right-pad ids with {@code padId}, labels with -100. */
  public record Params(int maxSeqLength, int padId, int bosId, int eosId, String tokenizerSha256) {}

  private final BufferAllocator allocator;
  private final List<SftShardReader> shards = new ArrayList<>();
  private final long[] offsets;
  private final SftManifest manifest;

  private SftShards(Path root, SftManifest m, String split, String tokenizerSha256)
      throws IOException {
    this.manifest = m;
    this.allocator = new RootAllocator();
    if (tokenizerSha256 != null && !tokenizerSha256.equals(m.params().tokenizerSha256())) {
      allocator.close();
      throw new ShardFormatException(
          root
              + ": instruction data made with tokenizer sha256 "
              + m.params().tokenizerSha256()
              + " ("
              + m.params().tokenizerFile()
              + "), but the tokenizer in use has sha256 "
              + tokenizerSha256
              + "; re-run prep-sft with this tokenizer or use the matching tokenizer");
    }
    List<Manifest.ShardEntry> entries = m.shardsOf(split);
    offsets = new long[entries.size() + 1];
    try {
      for (int k = 0; k < entries.size(); k++) {
        Manifest.ShardEntry e = entries.get(k);
        Path file = root.resolve(e.path());
        SftShardReader r =
            SftShardReader.open(allocator, file, m.params().maxSeqLength(), tokenizerSha256);
        shards.add(r);
        if (r.rows() != e.rows()) {
          throw new ShardFormatException(
              file
                  + ": "
                  + r.rows()
                  + " rows in the file, "
                  + e.rows()
                  + " in the manifest; the dataset is damaged, re-run prep-sft");
        }
        offsets[k + 1] = offsets[k] + r.rows();
      }
    } catch (IOException | RuntimeException e) {
      close();
      throw e;
    }
  }

  /**
   * Opens {@code split} ({@code "train"} or {@code "validation"}) of the dataset at {@code root}.
   *
   * @param tokenizerSha256 the trainer's tokenizer hash, checked against the data; null: any
   */
  public static SftExamples open(Path datasetRoot, String split, String tokenizerSha256)
      throws IOException {
    if (!split.equals(Manifest.TRAIN) && !split.equals(Manifest.VALIDATION)) {
      throw new IllegalArgumentException(
          "split must be \"train\" or \"validation\", not \"" + split + "\"");
    }
    return open(datasetRoot, SftManifest.readCurrent(datasetRoot), split, tokenizerSha256);
  }

  /**
   * Opens {@code split} of the dataset version {@code manifest} describes: open both splits from
   * one manifest read, so a prep-sft commit in between cannot mix two versions.
   */
  public static SftExamples open(
      Path datasetRoot, SftManifest manifest, String split, String tokenizerSha256)
      throws IOException {
    if (!split.equals(Manifest.TRAIN) && !split.equals(Manifest.VALIDATION)) {
      throw new IllegalArgumentException(
          "split must be \"train\" or \"validation\", not \"" + split + "\"");
    }
    return new SftShards(datasetRoot, manifest, split, tokenizerSha256);
  }

  /** The dataset's max_seq_length, pad, BOS and EOS ids and tokenizer hash. */
  public static Params params(Path datasetRoot) throws IOException {
    SftManifest.Params p = SftManifest.readCurrent(datasetRoot).params();
    return new Params(p.maxSeqLength(), p.padId(), p.bosId(), p.eosId(), p.tokenizerSha256());
  }

  public static int maxSeqLength(Path datasetRoot) throws IOException {
    return params(datasetRoot).maxSeqLength();
  }

  public static int padId(Path datasetRoot) throws IOException {
    return params(datasetRoot).padId();
  }

  public SftManifest manifest() {
    return manifest;
  }

  @Override
  public long rows() {
    return offsets[offsets.length - 1];
  }

  @Override
  public Example read(long row) throws IOException {
    if (row < 0 || row >= rows()) {
      throw new IndexOutOfBoundsException("row " + row + " of " + rows());
    }
    int k = Arrays.binarySearch(offsets, row);
    if (k >= 0) {
      while (k + 1 < offsets.length - 1 && offsets[k + 1] == row) {
        k++;
      }
    } else {
      k = -k - 2;
    }
    return shards.get(k).read(row - offsets[k]);
  }

  @Override
  public void close() throws IOException {
    IOException first = null;
    for (SftShardReader r : shards) {
      try {
        r.close();
      } catch (IOException e) {
        first = first == null ? e : first;
      }
    }
    shards.clear();
    allocator.close();
    if (first != null) {
      throw first;
    }
  }
}
