package dev.danlu.train.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Write-to-temporary-then-rename, so readers never see half a file. Temporary names are hidden
 * siblings ({@code .name.<random>.tmp}) in the target's directory (a rename across file systems
 * would not be atomic) created with default permissions: {@code Files.createTempFile} would make
 * them owner-only, and a model directory must stay readable by the group that serves it.
 */
final class AtomicFiles {
  private AtomicFiles() {}

  /** A fresh, not yet existing temporary path next to {@code target}. */
  static Path tempSibling(Path target) {
    Path abs = target.toAbsolutePath();
    String rnd = Long.toHexString(ThreadLocalRandom.current().nextLong());
    return abs.resolveSibling("." + abs.getFileName() + "." + rnd + ".tmp");
  }

  /** Renames {@code tmp} onto {@code target}, atomically where the file system allows. */
  static void commit(Path tmp, Path target) throws IOException {
    try {
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
    }
  }

  /** Writes a JSON value (pretty-printed by {@code mapper}) atomically. */
  static void writeJson(ObjectMapper mapper, Path target, Object value) throws IOException {
    Files.createDirectories(target.toAbsolutePath().getParent());
    Path tmp = tempSibling(target);
    try {
      mapper.writeValue(tmp.toFile(), value);
      commit(tmp, target);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }
}
