package dev.danlu.train.export;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
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
 * A real llama.cpp for the export tests: the npm package node-llama-cpp (pinned by
 * scripts/node-llama-cpp/package-lock.json, prebuilt CPU binaries, installed by scripts/setup.sh
 * under the danlu cache), driven by src/test/js/llama_cpp.mjs; and its shared libraries called by
 * src/test/python/ggml_oracle.py. Tests skip with "needs scripts/setup.sh: node-llama-cpp" where it
 * is not installed.
 */
final class LlamaCpp {
  static final Path SCRIPT = Path.of("src/test/js/llama_cpp.mjs");
  static final Path ORACLE = Path.of("src/test/python/ggml_oracle.py");
  static final ObjectMapper JSON = new ObjectMapper();

  private LlamaCpp() {}

  /** The install directory, or a skip naming what is missing. */
  static Path dir() {
    Path d = Prereq.cacheDir().resolve("node-llama-cpp");
    Assumptions.assumeTrue(
        Files.isRegularFile(d.resolve("node_modules/node-llama-cpp/dist/index.js"))
            && Files.isDirectory(bins()),
        Prereq.SETUP + " node-llama-cpp (npm) not installed under " + d.toAbsolutePath());
    Prereq.commands("nodejs", "node");
    return d;
  }

  /** The prebuilt linux-x64 libraries (libggml-base.so, libllama...). */
  static Path bins() {
    return Prereq.cacheDir()
        .resolve("node-llama-cpp/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64");
  }

  /** One model (and optional LoRA) with its operations. */
  static final class Run {
    final ObjectNode node = JSON.createObjectNode();
    final ArrayNode ops;

    Run(Path model, Path lora) {
      node.put("model", model.toAbsolutePath().toString());
      if (lora != null) {
        node.put("lora", lora.toAbsolutePath().toString());
      }
      ops = node.putArray("ops");
    }

    Run tokenize(List<String> texts) {
      ObjectNode o = ops.addObject().put("op", "tokenize");
      texts.forEach(o.putArray("texts")::add);
      return this;
    }

    Run greedy(int[] prompt, int n) {
      ObjectNode o = ops.addObject().put("op", "greedy").put("n", n);
      ArrayNode p = o.putArray("prompt");
      for (int t : prompt) {
        p.add(t);
      }
      return this;
    }

    Run probs(int[] tokens) {
      ArrayNode p = ops.addObject().put("op", "probs").putArray("tokens");
      for (int t : tokens) {
        p.add(t);
      }
      return this;
    }
  }

  /** Runs every model in one node process; returns, per run, the list of op results. */
  static List<JsonNode> run(Path work, Run... runs) throws IOException, InterruptedException {
    Path d = dir();
    ObjectNode req = JSON.createObjectNode();
    ArrayNode a = req.putArray("runs");
    for (Run r : runs) {
      a.add(r.node);
    }
    Path reqFile = Files.createTempFile(work, "llama-req", ".json");
    JSON.writeValue(reqFile.toFile(), req);
    ProcessBuilder pb =
        new ProcessBuilder("node", SCRIPT.toAbsolutePath().toString(), reqFile.toString());
    pb.environment().put("NLC_DIR", d.toAbsolutePath().toString());
    Path err = Files.createTempFile(work, "llama-err", ".txt");
    pb.redirectError(err.toFile());
    Process p = pb.start();
    try {
      byte[] out = p.getInputStream().readAllBytes();
      if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new IOException(
            "llama_cpp.mjs failed: " + Files.readString(err, StandardCharsets.UTF_8));
      }
      JsonNode res = JSON.readTree(out);
      List<JsonNode> list = new ArrayList<>();
      res.get("runs").forEach(list::add);
      return list;
    } finally {
      p.destroyForcibly();
    }
  }

  static int[] ints(JsonNode arr) {
    int[] r = new int[arr.size()];
    for (int i = 0; i < r.length; i++) {
      r[i] = arr.get(i).asInt();
    }
    return r;
  }

  /** Runs ggml_oracle.py with the libraries' directory; fails with its output when it fails. */
  static String oracle(String... args) throws IOException, InterruptedException {
    dir();
    Prereq.python("numpy");
    List<String> cmd =
        new ArrayList<>(List.of("/usr/bin/python3", ORACLE.toString(), bins().toString()));
    cmd.addAll(List.of(args));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    try {
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new IOException("ggml_oracle.py " + String.join(" ", args) + " failed:\n" + out);
      }
      return out;
    } finally {
      p.destroyForcibly();
    }
  }
}
