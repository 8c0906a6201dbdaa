package dev.danlu.bench;

import java.nio.file.Path;

/**
 * Where benchmarks find their inputs: the same system properties the tests use ({@code
 * danlu.cache.dir} for corpora fetched by scripts/fetch-corpora.sh, {@code danlu.shared.dir} for
 * the fixtures), with the same defaults as bin/danlu.
 */
final class BenchDirs {
  private BenchDirs() {}

  /** danlu's cache: corpora/, javacpp/ (default ~/.cache/danlu). */
  static Path cache() {
    String dir = System.getProperty("danlu.cache.dir");
    return dir != null ? Path.of(dir) : Path.of(System.getProperty("user.home"), ".cache", "danlu");
  }

  /** The shared fixtures folder beside the checkout (default ../shared). */
  static Path shared() {
    return Path.of(System.getProperty("danlu.shared.dir", "../shared"));
  }
}
