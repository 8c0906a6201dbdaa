package dev.danlu.jobs.prep;

import dev.danlu.data.tokenizer.TextTokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.spark.SparkFiles;

/**
 * Loads the tokenizer once per executor JVM. The driver ships the file with {@code
 * SparkContext.addFile} (so executors need no shared file system); tasks look it up by file name
 * and check its sha256, so a stale file of the same name is never used. Instances live as long as
 * the JVM (executors are reused across tasks; the native model is a few MB).
 */
final class TokenizerCache {
  private static final ConcurrentHashMap<String, TextTokenizer> CACHE = new ConcurrentHashMap<>();

  private TokenizerCache() {}

  static TextTokenizer get(String shippedName, String sha256) {
    return CACHE.computeIfAbsent(
        shippedName + "@" + sha256,
        k -> {
          Path p = Path.of(SparkFiles.get(shippedName));
          try {
            TextTokenizer t = TextTokenizer.load(p);
            if (!t.sha256().equals(sha256)) {
              t.close();
              throw new IllegalStateException(
                  "tokenizer "
                      + p
                      + " has sha256 "
                      + t.sha256()
                      + ", the driver shipped "
                      + sha256);
            }
            return t;
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        });
  }
}
