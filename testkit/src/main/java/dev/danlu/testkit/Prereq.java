package dev.danlu.testkit;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * What a test needs from outside the repository, checked in one place so that every skip says what
 * is missing and who provides it. The first words of each skip message name the kind, and {@code
 * scripts/test-summary.py} reads them:
 *
 * <ul>
 *   <li>{@value #SETUP}: a reference program, Python module or downloaded corpus that {@code
 *       scripts/setup.sh} installs. With {@code CI=true} such a skip fails the run: the oracle
 *       tests must execute in CI, not silently skip.
 *   <li>{@value #SHARED}: a fixture under {@code ../shared/fixtures} (absent in a bare clone; CI
 *       has it, so with {@code CI=true} such a skip fails the run too).
 * </ul>
 */
public final class Prereq {
  /** Skip-message prefix for what {@code scripts/setup.sh} installs. */
  public static final String SETUP = "needs scripts/setup.sh:";

  /** Skip-message prefix for fixtures under {@code ../shared}. */
  public static final String SHARED = "needs ../shared:";

  private static final Path PYTHON = Path.of("/usr/bin/python3");
  private static final Map<String, Boolean> IMPORTS = new ConcurrentHashMap<>();

  private Prereq() {}

  /** The shared folder beside the clone (Maven passes {@code danlu.shared.dir}). */
  public static Path sharedDir() {
    return Path.of(System.getProperty("danlu.shared.dir", "../shared"));
  }

  /** The danlu cache (Maven passes {@code danlu.cache.dir}; default {@code ~/.cache/danlu}). */
  public static Path cacheDir() {
    String dir = System.getProperty("danlu.cache.dir");
    return dir != null ? Path.of(dir) : Path.of(System.getProperty("user.home"), ".cache", "danlu");
  }

  /** {@code ../shared/<rel>}, or a skip naming it. */
  public static Path shared(String rel) {
    Path p = sharedDir().resolve(rel);
    Assumptions.assumeTrue(Files.exists(p), SHARED + " missing fixture " + p.toAbsolutePath());
    return p;
  }

  /**
   * {@code <cache>/<rel>}, something {@code scripts/fetch-corpora.sh} (run by setup.sh) unpacks, or
   * a skip naming it.
   */
  public static Path cached(String rel) {
    Path p = cacheDir().resolve(rel);
    Assumptions.assumeTrue(
        Files.exists(p),
        SETUP + " missing " + p.toAbsolutePath() + " (scripts/fetch-corpora.sh fetches it)");
    return p;
  }

  /** Skips unless every command is an executable on PATH; {@code debianPackage} provides them. */
  public static void commands(String debianPackage, String... commands) {
    for (String c : commands) {
      Assumptions.assumeTrue(
          onPath(c), SETUP + " " + c + " not on PATH (Debian package " + debianPackage + ")");
    }
  }

  /**
   * Skips unless Debian's {@code /usr/bin/python3} imports every module; names the first one
   * missing and its Debian package ({@code python3-<module>}).
   */
  public static void python(String... modules) {
    Assumptions.assumeTrue(
        Files.isExecutable(PYTHON), SETUP + " missing " + PYTHON + " (Debian package python3)");
    for (String m : modules) {
      boolean ok = IMPORTS.computeIfAbsent(m, Prereq::imports);
      Assumptions.assumeTrue(
          ok, SETUP + " python3 cannot import " + m + " (Debian package python3-" + m + ")");
    }
  }

  /** True if {@code tool} is an executable in a PATH directory. */
  public static boolean onPath(String tool) {
    for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
      if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, tool))) {
        return true;
      }
    }
    return false;
  }

  private static boolean imports(String module) {
    try {
      Process p =
          new ProcessBuilder(List.of(PYTHON.toString(), "-c", "import " + module))
              .redirectErrorStream(true)
              .redirectOutput(ProcessBuilder.Redirect.DISCARD)
              .start();
      try {
        return p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0;
      } finally {
        p.destroyForcibly();
      }
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }
}
