package dev.danlu.train.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * Runs src/test/python/read_safetensors.py, an independent json+numpy reader, under Debian's
 * /usr/bin/python3. Tests using it skip (not fail) where python3 or numpy is missing.
 */
final class PythonReader {
  static final Path PYTHON = Path.of("/usr/bin/python3");
  static final Path SCRIPT = Path.of("src/test/python/read_safetensors.py");

  private PythonReader() {}

  /**
   * Skips unless python3 imports numpy and every module in {@code more} (the script imports torch
   * only for the checks that compare with it).
   */
  static void assumeAvailable(String... more) {
    Assumptions.assumeTrue(Files.isRegularFile(SCRIPT), "missing " + SCRIPT.toAbsolutePath());
    dev.danlu.testkit.Prereq.python("numpy");
    dev.danlu.testkit.Prereq.python(more);
  }

  record Result(int exit, String out) {}

  static Result run(List<String> args) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>();
    cmd.add(PYTHON.toString());
    cmd.addAll(args);
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    try {
      byte[] out = p.getInputStream().readAllBytes();
      if (!p.waitFor(120, TimeUnit.SECONDS)) {
        throw new IOException("python timed out: " + cmd);
      }
      return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    } finally {
      p.destroyForcibly();
    }
  }

  /**
   * The summary JSON of some files: {file: {metadata, tensors: {name: {dtype, shape, sum...}}}}.
   */
  static JsonNode summary(Path... files) throws IOException, InterruptedException {
    List<String> args = new ArrayList<>(List.of(SCRIPT.toString(), "summary"));
    for (Path f : files) {
      args.add(f.toString());
    }
    Result r = run(args);
    assertEquals(0, r.exit, r.out);
    return new ObjectMapper().readTree(r.out);
  }

  static double sum(float[] a) {
    double s = 0;
    for (float v : a) {
      s += v;
    }
    return s;
  }

  static double sumsq(float[] a) {
    double s = 0;
    for (float v : a) {
      s += (double) v * v;
    }
    return s;
  }
}
