package dev.danlu.data.shard;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.arrow.memory.BufferAllocator;

/**
 * One split (train or validation) of a committed dataset as a single array of blocks: row {@code i}
 * is found by binary search over the shards' cumulative row counts. Every shard is opened (and its
 * metadata checked) up front, and its row count checked against the manifest.
 */
public final class ShardDataset implements AutoCloseable {
  private final Manifest manifest;
  private final List<ShardReader> shards = new ArrayList<>();
  private final long[] offsets; // offsets[k] = first global row of shard k; last = total rows

  /**
   * @param root the dataset directory (holding manifest.json)
   * @param split {@link Manifest#TRAIN} or {@link Manifest#VALIDATION}
   */
  public static ShardDataset open(
      BufferAllocator allocator, Path root, String split, ShardReader.Expect expect)
      throws IOException {
    return new ShardDataset(allocator, root, ManifestIo.readCurrent(root), split, expect);
  }

  public ShardDataset(
      BufferAllocator allocator,
      Path root,
      Manifest manifest,
      String split,
      ShardReader.Expect expect)
      throws IOException {
    this.manifest = manifest;
    List<Manifest.ShardEntry> entries = manifest.shardsOf(split);
    offsets = new long[entries.size() + 1];
    try {
      for (int k = 0; k < entries.size(); k++) {
        Manifest.ShardEntry e = entries.get(k);
        ShardReader r = ShardReader.open(allocator, root.resolve(e.path()), expect);
        shards.add(r);
        if (r.rows() != e.rows()) {
          throw new ShardFormatException(
              root.resolve(e.path())
                  + ": "
                  + r.rows()
                  + " rows in the file, "
                  + e.rows()
                  + " in the manifest; the dataset is damaged, re-run prep --rebuild");
        }
        offsets[k + 1] = offsets[k] + r.rows();
      }
    } catch (IOException | RuntimeException e) {
      close();
      throw e;
    }
  }

  public Manifest manifest() {
    return manifest;
  }

  public long rows() {
    return offsets[offsets.length - 1];
  }

  public int blockSize() {
    return manifest.params().blockSize();
  }

  /** Copies global row {@code row} into {@code dst}. */
  public void readRow(long row, int[] dst) throws IOException {
    if (row < 0 || row >= rows()) {
      throw new IndexOutOfBoundsException("row " + row + " of " + rows());
    }
    int k = Arrays.binarySearch(offsets, row);
    // An exact hit may land on an empty shard's offset; take the last shard starting at row.
    if (k >= 0) {
      while (k + 1 < offsets.length - 1 && offsets[k + 1] == row) {
        k++;
      }
    } else {
      k = -k - 2;
    }
    shards.get(k).readRow(row - offsets[k], dst);
  }

  @Override
  public void close() throws IOException {
    IOException first = null;
    for (ShardReader r : shards) {
      try {
        r.close();
      } catch (IOException e) {
        first = first == null ? e : first;
      }
    }
    shards.clear();
    if (first != null) {
      throw first;
    }
  }
}
