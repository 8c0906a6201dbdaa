package dev.danlu.jobs.prep;

import dev.danlu.data.shard.RollingShardWriter;
import java.io.IOException;
import java.nio.channels.Channels;
import java.nio.channels.WritableByteChannel;
import java.util.function.IntFunction;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Where a task's rolling shard writer puts its parts on a Hadoop file system: each part is written
 * under a temporary name and renamed into place when complete; an aborted part is deleted (or left
 * for the garbage collection of the next committed run). Shared by prep and prep-sft. Local files
 * are created without Hadoop's per-file {@code chmod} process ({@link HadoopFs#create}).
 */
final class HadoopPartStore implements RollingShardWriter.PartStore {
  private final FileSystem fs;
  private final Path root;
  private final IntFunction<String> rel;
  private final IntFunction<Path> tmp;

  /**
   * @param rel a part's path relative to {@code root}
   * @param tmp a part's temporary path while it is written
   */
  HadoopPartStore(FileSystem fs, Path root, IntFunction<String> rel, IntFunction<Path> tmp) {
    this.fs = fs;
    this.root = root;
    this.rel = rel;
    this.tmp = tmp;
  }

  @Override
  public WritableByteChannel openTemp(int part) throws IOException {
    return Channels.newChannel(HadoopFs.create(fs, tmp.apply(part)));
  }

  @Override
  public void commit(int part) throws IOException {
    HadoopFs.replace(fs, tmp.apply(part), new Path(root, rel.apply(part)));
  }

  @Override
  public void abort(int part) {
    try {
      fs.delete(tmp.apply(part), false);
    } catch (IOException e) {
      // left for the garbage collection of the next committed run
    }
  }
}
