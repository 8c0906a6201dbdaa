package dev.danlu.launch;

import dev.danlu.launch.smoke.RingSmokeState;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * A minimal valid training setup in a temporary directory: a model directory (config.json and a
 * tokenizer file), a committed dataset (manifest.json naming that tokenizer) and a YAML config.
 */
public final class TrainFixture {
  public final Path root;
  public final Path model;
  public final Path dataset;
  public final Path output;
  public final Path config;

  public TrainFixture(Path root, int worldSize, int maxSteps) throws IOException {
    this.root = root;
    model = Files.createDirectories(root.resolve("model"));
    dataset = Files.createDirectories(root.resolve("shards"));
    output = root.resolve("out");
    Files.writeString(model.resolve("config.json"), "{\"vocab_size\": 512, \"hidden_size\": 64}");
    byte[] tokenizer = "a tokenizer.model stand-in".getBytes(StandardCharsets.UTF_8);
    Files.write(model.resolve("tokenizer.model"), tokenizer);
    writeManifest(sha256(tokenizer), 512);
    config = root.resolve("train.yaml");
    Files.writeString(
        config,
        "# test config\n"
            + "model_name_or_path: "
            + model
            + "\ndataset_dir: "
            + dataset
            + "\noutput_dir: "
            + output
            + "\nmax_steps: "
            + maxSteps
            + "\nseed: 7\nworld_size: "
            + worldSize
            + "\n");
  }

  public void writeManifest(String tokenizerSha, int vocab) throws IOException {
    Files.writeString(
        dataset.resolve("manifest.json"),
        "{\"formatVersion\":1,\"version\":1,\"params\":{\"tokenizerSha256\":\""
            + tokenizerSha
            + "\",\"tokenizerFile\":\"tokenizer.model\",\"vocabSize\":"
            + vocab
            + ",\"blockSize\":64}}");
  }

  /** The smoke run's values after {@code steps} steps, computed without any ring or Spark. */
  public static String[] expectedValues(long seed, int worldSize, int steps) {
    long[] v = RingSmokeState.initial(seed, worldSize);
    for (int s = 1; s <= steps; s++) {
      v = RingSmokeState.next(v, s);
    }
    String[] out = new String[worldSize];
    for (int i = 0; i < worldSize; i++) {
      out[i] = String.format("%016x", v[i]);
    }
    return out;
  }

  static String sha256(byte[] b) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
