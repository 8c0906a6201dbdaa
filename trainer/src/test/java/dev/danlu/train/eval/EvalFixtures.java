package dev.danlu.train.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.train.checkpoint.DType;
import dev.danlu.train.checkpoint.HfCheckpoint;
import dev.danlu.train.checkpoint.SafeTensorsWriter;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.RandomInit;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Small random models for the evaluation tests and the Python reference that checks them. The
 * weights are {@link RandomInit}'s draws rescaled to unit-variance activations (embeddings N(0, 1),
 * projections N(0, 1/fan_in)): with HF's 0.02 initialisation every logit is close to zero and the
 * four letters' scores would be nearly tied; here they differ by whole units, so a predicted letter
 * is a robust thing to compare.
 */
public final class EvalFixtures {
  public static final Path PYTHON = Path.of("/usr/bin/python3");
  public static final String SCRIPT = "src/test/python/eval_reference.py";

  private EvalFixtures() {}

  /** hidden 32, 2 layers, 4 heads (2 kv), untied, the given vocabulary and context. */
  public static LlamaConfig config(int vocab, int maxPos) {
    return new LlamaConfig(32, 64, 2, 4, 2, vocab, 1e-5, 10000.0, null, false, maxPos);
  }

  /** Writes an HF directory (config.json, F32 model.safetensors, tokenizer.model). */
  public static Path writeModel(Path dir, LlamaConfig c, long seed, Path tokenizer)
      throws IOException {
    RandomInit.writeHfDir(dir, c, seed, tokenizer); // config.json, tokenizer.model
    List<RandomInit.TensorSpec> specs = RandomInit.tensors(c);
    Path tmp = dir.resolve(".model.tmp");
    SafeTensorsWriter.Builder b =
        SafeTensorsWriter.builder(tmp).setDType(DType.F32).optMetadata("format", "pt");
    for (RandomInit.TensorSpec t : specs) {
      b.declare(t.name(), t.shape());
    }
    try (SafeTensorsWriter w = b.open()) {
      for (RandomInit.TensorSpec t : specs) {
        float[] v = RandomInit.values(seed, t);
        if (!t.norm()) {
          long fanIn = t.shape()[1];
          double std = t.name().equals("model.embed_tokens.weight") ? 1.0 : 1 / Math.sqrt(fanIn);
          for (int i = 0; i < v.length; i++) {
            v[i] = (float) (v[i] / RandomInit.INITIALIZER_RANGE * std);
          }
        }
        w.writeFloats(v);
      }
    }
    Files.move(
        tmp, dir.resolve(HfCheckpoint.SINGLE), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    return dir;
  }

  /** Runs eval_reference.py (cwd: the trainer module) and parses its JSON. */
  public static JsonNode reference(Path script, List<String> args)
      throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>(List.of(PYTHON.toString(), script.toString()));
    cmd.addAll(args);
    Path err = Files.createTempFile("eval-reference", ".err");
    Process p = new ProcessBuilder(cmd).redirectError(err.toFile()).start();
    try {
      byte[] out = p.getInputStream().readAllBytes();
      if (!p.waitFor(300, TimeUnit.SECONDS)) {
        throw new IOException("eval_reference.py timed out: " + cmd);
      }
      if (p.exitValue() != 0) {
        throw new IOException(
            "eval_reference.py failed: " + Files.readString(err, StandardCharsets.UTF_8));
      }
      return new ObjectMapper().readTree(new String(out, StandardCharsets.UTF_8));
    } finally {
      p.destroyForcibly();
      Files.deleteIfExists(err);
    }
  }
}
