package dev.danlu.jobs.prep;

import java.io.IOException;
import java.net.URI;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.util.Progressable;

/**
 * A Hadoop file system that is not {@code file:}: the local disk under the scheme {@code
 * danlutest:}, so prep's non-local code path (the one HDFS, S3A and ABFS take) runs in a unit test.
 * It counts the files and directories Hadoop creates for it.
 */
public class OtherSchemeFs extends RawLocalFileSystem {
  static final String SCHEME = "danlutest";
  static final AtomicInteger CREATES = new AtomicInteger();
  static final AtomicInteger MKDIRS = new AtomicInteger();

  @Override
  public URI getUri() {
    return URI.create(SCHEME + ":///");
  }

  @Override
  public String getScheme() {
    return SCHEME;
  }

  @Override
  public FSDataOutputStream create(
      Path f,
      FsPermission permission,
      boolean overwrite,
      int bufferSize,
      short replication,
      long blockSize,
      Progressable progress)
      throws IOException {
    CREATES.incrementAndGet();
    return super.create(f, permission, overwrite, bufferSize, replication, blockSize, progress);
  }

  @Override
  public FSDataOutputStream create(
      Path f,
      boolean overwrite,
      int bufferSize,
      short replication,
      long blockSize,
      Progressable progress)
      throws IOException {
    CREATES.incrementAndGet();
    return super.create(f, overwrite, bufferSize, replication, blockSize, progress);
  }

  @Override
  public boolean mkdirs(Path f) throws IOException {
    MKDIRS.incrementAndGet();
    return super.mkdirs(f);
  }

  @Override
  public boolean mkdirs(Path f, FsPermission permission) throws IOException {
    MKDIRS.incrementAndGet();
    return super.mkdirs(f, permission);
  }
}
