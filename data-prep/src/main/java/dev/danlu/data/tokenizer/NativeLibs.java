package dev.danlu.data.tokenizer;

import java.nio.file.Path;

/**
 * Keeps DJL offline: its natives for linux-x86_64 are inside the sentencepiece and tokenizers jars,
 * and nothing may be downloaded. {@code bin/danlu} and the tests also export {@code
 * DJL_OFFLINE=true}; this covers embedders (Spark executors) that did not.
 */
final class NativeLibs {
  private NativeLibs() {}

  static synchronized void configure() {
    if (System.getenv("DJL_OFFLINE") == null && System.getProperty("ai.djl.offline") == null) {
      System.setProperty("ai.djl.offline", "true");
    }
    if (System.getenv("DJL_CACHE_DIR") == null && System.getProperty("DJL_CACHE_DIR") == null) {
      String cache = System.getProperty("danlu.cache.dir");
      if (cache == null) {
        String env = System.getenv("DANLU_CACHE_DIR");
        cache =
            env != null
                ? env
                : Path.of(System.getProperty("user.home"), ".cache", "danlu").toString();
      }
      System.setProperty("DJL_CACHE_DIR", Path.of(cache, "djl").toString());
    }
  }
}
