package dev.danlu.train.serve;

import dev.danlu.testkit.Prereq;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * Runs the node scripts of {@code src/test/node} with the npm packages scripts/setup.sh installs
 * under the danlu cache: {@code openai} (pinned in src/test/node/package*.json, under {@code
 * serve-client}) and {@code playwright-core} with Debian's chromium (the launcher's pin, under
 * {@code browser}). Skips naming what is missing; always stops the process it starts.
 */
final class NodeScripts {
  static final Path CHROMIUM = Path.of("/usr/bin/chromium");

  private NodeScripts() {}

  static Path openaiModules() {
    Prereq.commands("nodejs", "node");
    Path p = Prereq.cacheDir().resolve("serve-client/node_modules/openai");
    Assumptions.assumeTrue(Files.isDirectory(p), Prereq.SETUP + " openai (npm): " + p + " missing");
    return p.getParent();
  }

  static Path browserModules() {
    Prereq.commands("nodejs", "node");
    Assumptions.assumeTrue(
        Files.isExecutable(CHROMIUM),
        Prereq.SETUP + " chromium/playwright-core: " + CHROMIUM + " missing (Debian chromium)");
    Path p = Prereq.cacheDir().resolve("browser/node_modules/playwright-core");
    Assumptions.assumeTrue(
        Files.isDirectory(p),
        Prereq.SETUP + " chromium/playwright-core: " + p + " missing (npm playwright-core)");
    return p.getParent();
  }

  /** Runs {@code node src/test/node/<script> args...}; returns its stdout's last line. */
  static String run(Path nodeModules, Path tmp, String script, int seconds, String... args)
      throws Exception {
    List<String> cmd = new ArrayList<>();
    cmd.add("node");
    cmd.add(Path.of("src/test/node", script).toAbsolutePath().toString());
    cmd.addAll(List.of(args));
    Path log = Files.createTempFile(tmp, script, ".log");
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().put("NODE_PATH", nodeModules.toString());
    pb.redirectError(log.toFile());
    Process p = pb.start();
    try {
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
      if (!p.waitFor(seconds, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new AssertionError(script + " failed:\n" + out + "\n" + read(log));
      }
      String[] lines = out.split("\n");
      return lines[lines.length - 1];
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
