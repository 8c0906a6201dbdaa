package dev.danlu.jobs.prep;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileContext;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Options;
import org.apache.hadoop.fs.Path;

/** File-system helpers: local, HDFS and S3A paths all go through Hadoop's FileSystem API. */
final class HadoopFs {
  private HadoopFs() {}

  /** The file system of {@code p}; for local paths the raw one, so no {@code .crc} side files. */
  static FileSystem of(Path p, Configuration conf) throws IOException {
    FileSystem fs = p.getFileSystem(conf);
    return fs instanceof LocalFileSystem local ? local.getRaw() : fs;
  }

  /**
   * Writes {@code bytes} to {@code dst} through a temporary file and a rename that replaces {@code
   * dst} atomically where the file system can (local: rename(2); HDFS: rename with OVERWRITE). On
   * object stores (S3A) rename is a copy: readers may briefly see no file, never a partial one,
   * since the copy is published whole.
   */
  static void writeAtomically(FileSystem fs, Path dst, byte[] bytes, Configuration conf)
      throws IOException {
    Path tmp =
        new Path(dst.getParent(), "." + dst.getName() + ".tmp-" + java.util.UUID.randomUUID());
    try (FSDataOutputStream out = fs.create(tmp, true)) {
      out.write(bytes);
      out.hsync();
    }
    replace(fs, tmp, dst, conf);
  }

  /**
   * The files under {@code dir}, recursively, as plain {@link FileStatus}es. Not {@code
   * FileSystem.listFiles}: its {@code LocatedFileStatus} reads each file's permissions, which
   * Hadoop's local file system does by forking {@code ls -ld} per file when native IO is absent —
   * for a corpus of 1300 small files that was most of prep's wall time.
   */
  static List<FileStatus> listFilesRecursive(FileSystem fs, Path dir) throws IOException {
    List<FileStatus> out = new ArrayList<>();
    ArrayDeque<Path> todo = new ArrayDeque<>();
    todo.add(dir);
    while (!todo.isEmpty()) {
      for (FileStatus st : fs.listStatus(todo.poll())) {
        if (st.isDirectory()) {
          todo.add(st.getPath());
        } else if (st.isFile()) {
          out.add(st);
        }
      }
    }
    return out;
  }

  /** Renames {@code src} to {@code dst}, replacing {@code dst} if it exists. */
  static void replace(FileSystem fs, Path src, Path dst, Configuration conf) throws IOException {
    String scheme = fs.getUri().getScheme();
    if ("file".equals(scheme)) {
      Files.move(
          java.nio.file.Path.of(src.toUri().getPath()),
          java.nio.file.Path.of(dst.toUri().getPath()),
          StandardCopyOption.ATOMIC_MOVE,
          StandardCopyOption.REPLACE_EXISTING);
      return;
    }
    try {
      FileContext.getFileContext(fs.getUri(), conf).rename(src, dst, Options.Rename.OVERWRITE);
    } catch (UnsupportedOperationException e) {
      fs.delete(dst, false);
      if (!fs.rename(src, dst)) {
        throw new IOException("cannot rename " + src + " to " + dst);
      }
    }
  }
}
