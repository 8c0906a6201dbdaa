package dev.danlu.launch.progress;

import dev.danlu.testkit.Prereq;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * Headless Chromium for tests: Debian's {@code /usr/bin/chromium} driven by {@code playwright-core}
 * (pinned in {@code launcher/src/test/browser/package.json}, installed by scripts/setup.sh under
 * the danlu cache). {@link #run} starts {@code training-tab.js} and always stops it.
 */
public final class BrowserPrereq {
  static final Path CHROMIUM = Path.of("/usr/bin/chromium");

  private BrowserPrereq() {}

  /** The node_modules holding playwright-core, or a skip naming what is missing. */
  public static Path nodeModules() {
    Assumptions.assumeTrue(
        Files.isExecutable(CHROMIUM),
        Prereq.SETUP + " chromium/playwright-core: " + CHROMIUM + " missing (Debian chromium)");
    Path pw = Prereq.cacheDir().resolve("browser/node_modules/playwright-core");
    Assumptions.assumeTrue(
        Files.isDirectory(pw),
        Prereq.SETUP + " chromium/playwright-core: " + pw + " missing (npm playwright-core)");
    return pw.getParent();
  }

  /** The test script's path in the source tree. */
  static Path script() {
    return Path.of("src/test/browser/training-tab.js").toAbsolutePath();
  }

  /**
   * Runs the script against {@code url}; returns its one JSON line. The browser profile lives in
   * {@code tmp}; the process is destroyed (with Chromium under it) whatever happens.
   */
  public static String run(Path nodeModules, Path tmp, String url, String mode, int seconds)
      throws Exception {
    Path profile = Files.createTempDirectory(tmp, "chromium-profile");
    Path log = tmp.resolve("browser-" + mode + ".log");
    ProcessBuilder pb =
        new ProcessBuilder(
            List.of(
                "node",
                script().toString(),
                url,
                mode,
                profile.toString(),
                Integer.toString(seconds)));
    pb.environment().put("NODE_PATH", nodeModules.toString());
    pb.redirectError(log.toFile());
    Process p = pb.start();
    try {
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(seconds + 30L, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new AssertionError("browser script failed on " + url + ":\n" + out + read(log));
      }
      return out.trim();
    } finally {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
      p.waitFor(10, TimeUnit.SECONDS);
    }
  }

  private static String read(Path p) {
    try {
      return Files.readString(p, StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "(no log)";
    }
  }
}
