package dev.danlu.jobs.prep;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * A dataset directory on any Hadoop file system: reading the committed manifest, committing a new
 * version, and collecting garbage.
 *
 * <p>Commit order: shards (already renamed into place by tasks), then {@code
 * manifests/manifest-N.json}, then {@code manifest.json} — the commit point. A run killed at any
 * moment leaves {@code manifest.json} at the previous version, whose shards are untouched (new
 * shards have new names: content hash + split). One writer at a time is assumed (a scheduler runs
 * the nightly job serially).
 */
final class DatasetStore {
  private static final Pattern VERSION = Pattern.compile("manifest-(\\d+)\\.json");

  private final FileSystem fs;
  private final Path root;
  private final Configuration conf;

  DatasetStore(Path root, Configuration conf) throws IOException {
    this.fs = HadoopFs.of(root, conf);
    this.root = root;
    this.conf = conf;
  }

  Optional<Manifest> current() throws IOException {
    Path p = new Path(root, ManifestIo.CURRENT);
    try (InputStream in = fs.open(p)) {
      return Optional.of(ManifestIo.fromJson(in.readAllBytes(), p.toString()));
    } catch (FileNotFoundException e) {
      return Optional.empty();
    }
  }

  /** Writes version {@code m.version()} and then points {@code manifest.json} at it. */
  void commit(Manifest m) throws IOException {
    byte[] json = ManifestIo.toJson(m);
    HadoopFs.mkdirs(fs, new Path(root, ManifestIo.VERSIONS_DIR));
    HadoopFs.writeAtomically(fs, new Path(root, ManifestIo.versionPath(m.version())), json);
    HadoopFs.writeAtomically(fs, new Path(root, ManifestIo.CURRENT), json);
  }

  /** What garbage collection removed. */
  record GcResult(int shardFiles, long shardBytes, int manifestVersions) {}

  /**
   * Deletes shard files (and temporary files of dead attempts) referenced by none of the newest
   * {@code keep} versions, and the manifest versions older than those. Runs only after a commit, so
   * the current version's files are always among the kept ones.
   */
  GcResult collectGarbage(Manifest current, int keep) throws IOException {
    Set<String> live = new HashSet<>();
    int deletedVersions = 0;
    Path versions = new Path(root, ManifestIo.VERSIONS_DIR);
    if (fs.exists(versions)) {
      for (FileStatus st : fs.listStatus(versions)) {
        Matcher mt = VERSION.matcher(st.getPath().getName());
        if (!mt.matches()) {
          continue;
        }
        long v = Long.parseLong(mt.group(1));
        if (v > current.version()) {
          continue; // written by a run that died before its commit point; overwritten later
        }
        if (v > current.version() - keep) {
          try (InputStream in = fs.open(st.getPath())) {
            Manifest m = ManifestIo.fromJson(in.readAllBytes(), st.getPath().toString());
            m.shards().forEach(s -> live.add(s.path()));
          }
        } else {
          fs.delete(st.getPath(), false);
          deletedVersions++;
        }
      }
    }
    current.shards().forEach(s -> live.add(s.path()));
    int files = 0;
    long bytes = 0;
    Path shards = new Path(root, ManifestIo.SHARDS_DIR);
    if (fs.exists(shards)) {
      String base = fs.makeQualified(root).toUri().getPath();
      for (FileStatus st : HadoopFs.listFilesRecursive(fs, shards)) {
        String rel = st.getPath().toUri().getPath().substring(base.length()).replaceFirst("^/", "");
        if (!live.contains(rel)) {
          fs.delete(st.getPath(), false);
          files++;
          bytes += st.getLen();
        }
      }
    }
    return new GcResult(files, bytes, deletedVersions);
  }
}
