package dev.danlu.jobs.prep;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.GlobPattern;
import org.apache.hadoop.fs.Path;

/**
 * Expands {@code --input} into source files: a file is taken as is; a directory is searched
 * recursively for names matching the pattern; a glob's matches are treated the same way. Names
 * starting with '.' or '_' (Hadoop's hidden/marker files) are ignored.
 */
final class InputLister {
  /** A source file as listed: full URI, size, modification time (epoch ms). */
  record FileRef(String path, long size, long mtime) implements Serializable {}

  private InputLister() {}

  static List<FileRef> list(String input, String pattern, Configuration conf) throws IOException {
    Path p = new Path(input);
    FileSystem fs = HadoopFs.of(p, conf);
    GlobPattern names = new GlobPattern(pattern);
    List<FileRef> out = new ArrayList<>();
    FileStatus[] matches;
    try {
      matches = fs.globStatus(p);
    } catch (IOException e) {
      throw new IOException("cannot list --input " + input + ": " + e.getMessage(), e);
    }
    if (matches == null || matches.length == 0) {
      throw new FileNotFoundException(
          "--input " + input + ": no such file or directory (or the glob matches nothing)");
    }
    for (FileStatus st : matches) {
      if (st.isFile()) {
        out.add(ref(st));
        continue;
      }
      try {
        for (FileStatus f : HadoopFs.listFilesRecursive(fs, st.getPath())) {
          String name = f.getPath().getName();
          if (f.isFile() && !hidden(f.getPath(), st.getPath()) && names.matches(name)) {
            out.add(ref(f));
          }
        }
      } catch (IOException e) {
        throw new IOException("cannot list " + st.getPath() + ": " + e.getMessage(), e);
      }
    }
    if ("file".equals(fs.getUri().getScheme())) {
      rejectBrokenLinks(matches, names);
    }
    out.sort(Comparator.comparing(FileRef::path));
    return out;
  }

  /**
   * Hadoop's local listing silently leaves out entries it cannot stat (a dangling symbolic link); a
   * corpus file that vanishes that way must be an error, not a silent drop.
   */
  private static void rejectBrokenLinks(FileStatus[] roots, GlobPattern names) throws IOException {
    List<String> broken = new ArrayList<>();
    for (FileStatus st : roots) {
      java.nio.file.Path root = java.nio.file.Path.of(st.getPath().toUri());
      if (!st.isDirectory()) {
        continue;
      }
      try (java.util.stream.Stream<java.nio.file.Path> walk = java.nio.file.Files.walk(root)) {
        walk.filter(q -> names.matches(q.getFileName().toString()))
            .filter(q -> java.nio.file.Files.isSymbolicLink(q) && !java.nio.file.Files.exists(q))
            .forEach(q -> broken.add(q.toString()));
      }
    }
    if (!broken.isEmpty()) {
      throw new IOException(
          "cannot read "
              + broken.size()
              + " input file(s), dangling symbolic links; fix or remove them:\n  "
              + String.join("\n  ", broken));
    }
  }

  private static boolean hidden(Path file, Path root) {
    for (Path q = file; q != null && !q.equals(root); q = q.getParent()) {
      if (q.getName().startsWith(".") || q.getName().startsWith("_")) {
        return true;
      }
    }
    return false;
  }

  private static FileRef ref(FileStatus st) {
    return new FileRef(st.getPath().toString(), st.getLen(), st.getModificationTime());
  }
}
