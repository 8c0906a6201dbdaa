package dev.danlu.data.manifest;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Manifest JSON and the dataset layout.
 *
 * <p>Layout under the dataset root: {@code manifests/manifest-000012.json} (every committed
 * version, kept) and {@code manifest.json}, a copy of the newest, written last by an atomic rename.
 * A reader opens {@code manifest.json} and so only ever sees a committed version.
 */
public final class ManifestIo {
  public static final String CURRENT = "manifest.json";
  public static final String VERSIONS_DIR = "manifests";
  public static final String SHARDS_DIR = "shards";

  private static final ObjectMapper JSON =
      new ObjectMapper()
          .enable(SerializationFeature.INDENT_OUTPUT)
          .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
          .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);

  private ManifestIo() {}

  /** Relative path of version {@code n}. */
  public static String versionPath(long n) {
    return String.format(Locale.ROOT, "%s/manifest-%06d.json", VERSIONS_DIR, n);
  }

  public static byte[] toJson(Manifest m) {
    try {
      return JSON.writeValueAsBytes(m);
    } catch (IOException e) {
      throw new IllegalStateException("cannot serialize manifest", e);
    }
  }

  /**
   * @param where the file name, for messages
   */
  public static Manifest fromJson(byte[] json, String where) throws IOException {
    Manifest m;
    try {
      m = JSON.readValue(json, Manifest.class);
    } catch (IOException e) {
      throw new IOException(where + ": not a valid danlu manifest: " + e.getMessage(), e);
    }
    if (!Manifest.READABLE_VERSIONS.contains(m.formatVersion())) {
      throw new IOException(
          where
              + ": manifest format version "
              + m.formatVersion()
              + ", this danlu understands "
              + new java.util.TreeSet<>(Manifest.READABLE_VERSIONS)
              + "; use the danlu release that wrote it, or prepare the corpus again");
    }
    return m;
  }

  /** Reads the committed manifest of a local dataset. */
  public static Manifest readCurrent(Path datasetRoot) throws IOException {
    Path p = datasetRoot.resolve(CURRENT);
    try {
      return fromJson(Files.readAllBytes(p), p.toString());
    } catch (NoSuchFileException e) {
      throw new NoSuchFileException(
          p.toString(),
          null,
          "no committed dataset here; run `danlu prep --output " + datasetRoot + "`");
    }
  }
}
