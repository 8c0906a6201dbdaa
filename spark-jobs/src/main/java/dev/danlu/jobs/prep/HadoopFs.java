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

/**
 * File-system helpers: local, HDFS and S3A paths all go through Hadoop's FileSystem API, except the
 * two operations Hadoop's local file system implements by forking a process: creating a file or a
 * directory. Without Hadoop's native library (the usual case for a Maven- or pip-installed Spark),
 * {@code RawLocalFileSystem} sets the permission of every file it creates by running {@code chmod
 * 0644 <file>} and of every directory by {@code chmod 0755 <dir>}; for a prep run writing one shard
 * per small input file that was half of the CPU time, all of it system time. On {@code file:} those
 * two go through java.nio (the process umask applies, as for any other program); every other scheme
 * keeps Hadoop's implementation.
 */
final class HadoopFs {
  private HadoopFs() {}

  /** True for the local file system, whose creations go through java.nio. */
  static boolean isLocal(FileSystem fs) {
    return "file".equals(fs.getUri().getScheme());
  }

  /** The java.nio path of a path on the local file system. */
  static java.nio.file.Path local(Path p) {
    return java.nio.file.Path.of(p.toUri().getPath());
  }

  /** Creates {@code dir} and its missing parents. */
  static void mkdirs(FileSystem fs, Path dir) throws IOException {
    if (isLocal(fs)) {
      Files.createDirectories(local(dir));
    } else if (!fs.mkdirs(dir)) {
      throw new IOException("cannot create directory " + dir);
    }
  }

  /**
   * Opens {@code p} for writing (replacing it; missing parent directories are created). Local files
   * get a 64 KiB buffer: Arrow writes many small pieces (message headers, padding).
   */
  static java.io.OutputStream create(FileSystem fs, Path p) throws IOException {
    if (isLocal(fs)) {
      java.nio.file.Path f = local(p);
      Files.createDirectories(f.getParent());
      return new java.io.BufferedOutputStream(Files.newOutputStream(f), 1 << 16);
    }
    return fs.create(p, true);
  }

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
  static void writeAtomically(FileSystem fs, Path dst, byte[] bytes) throws IOException {
    Path tmp =
        new Path(dst.getParent(), "." + dst.getName() + ".tmp-" + java.util.UUID.randomUUID());
    if (isLocal(fs)) {
      java.nio.file.Path f = local(tmp);
      Files.createDirectories(f.getParent());
      try (java.nio.channels.FileChannel ch =
          java.nio.channels.FileChannel.open(
              f,
              java.nio.file.StandardOpenOption.CREATE,
              java.nio.file.StandardOpenOption.TRUNCATE_EXISTING,
              java.nio.file.StandardOpenOption.WRITE)) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(bytes);
        while (b.hasRemaining()) {
          ch.write(b);
        }
        ch.force(true);
      }
    } else {
      try (FSDataOutputStream out = fs.create(tmp, true)) {
        out.write(bytes);
        out.hsync();
      }
    }
    replace(fs, tmp, dst);
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
  static void replace(FileSystem fs, Path src, Path dst) throws IOException {
    if (isLocal(fs)) {
      Files.move(
          local(src),
          local(dst),
          StandardCopyOption.ATOMIC_MOVE,
          StandardCopyOption.REPLACE_EXISTING);
      return;
    }
    try {
      FileContext.getFileContext(fs.getUri(), fs.getConf())
          .rename(src, dst, Options.Rename.OVERWRITE);
    } catch (UnsupportedOperationException
        | org.apache.hadoop.fs.UnsupportedFileSystemException e) {
      // no FileContext binding for this scheme (fs.AbstractFileSystem.<scheme>.impl): plain rename
      fs.delete(dst, false);
      if (!fs.rename(src, dst)) {
        throw new IOException("cannot rename " + src + " to " + dst);
      }
    }
  }
}
