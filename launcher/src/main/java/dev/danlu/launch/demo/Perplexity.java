package dev.danlu.launch.demo;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.danlu.train.eval.DatasetPerplexity;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.model.LlamaWeights;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * The demo's validation perplexity: {@link DatasetPerplexity} (the trainer's evaluator, also behind
 * {@code danlu eval ppl --data}) behind a small result cache keyed by the inputs' SHA-256, so a
 * re-run of the demo skips evaluations whose model, adapter and data have not changed.
 */
public final class Perplexity {
  /** Mean loss per token and how many tokens it averages. */
  public record Result(double loss, long tokens, long rows) {
    public double perplexity() {
      return Math.exp(loss);
    }
  }

  /** An evaluation to run when the cache cannot answer. */
  @FunctionalInterface
  public interface Evaluation {
    Result run() throws IOException;
  }

  /** A result and whether it came from the cache. */
  public record Cached(Result result, boolean reused) {}

  private Perplexity() {}

  /**
   * The result recorded in {@code cacheFile} when it was computed from exactly the same {@code
   * inputs} (by SHA-256 of their bytes), else {@code eval}'s, which is then recorded. Lets a re-run
   * of the demo skip evaluations whose model, adapter and data have not changed.
   */
  public static Cached cached(Path cacheFile, List<Path> inputs, Evaluation eval)
      throws IOException {
    String key = digest(inputs);
    ObjectMapper om = new ObjectMapper();
    if (Files.isRegularFile(cacheFile)) {
      try {
        JsonNode n = om.readTree(cacheFile.toFile());
        if (key.equals(n.path("inputs_sha256").asText())) {
          return new Cached(
              new Result(
                  n.get("loss").asDouble(), n.get("tokens").asLong(), n.get("rows").asLong()),
              true);
        }
      } catch (IOException | RuntimeException e) {
        // unreadable or old cache: evaluate again and overwrite it
      }
    }
    Result r = eval.run();
    ObjectNode n = om.createObjectNode();
    n.put("inputs_sha256", key);
    n.put("loss", r.loss());
    n.put("perplexity", r.perplexity());
    n.put("tokens", r.tokens());
    n.put("rows", r.rows());
    Path tmp = cacheFile.resolveSibling("." + cacheFile.getFileName() + ".tmp");
    om.writerWithDefaultPrettyPrinter().writeValue(tmp.toFile(), n);
    Files.move(tmp, cacheFile, StandardCopyOption.REPLACE_EXISTING);
    return new Cached(r, false);
  }

  static String digest(List<Path> inputs) throws IOException {
    MessageDigest all = sha256();
    for (Path p : inputs) {
      MessageDigest one = sha256();
      try (InputStream in = new DigestInputStream(Files.newInputStream(p), one)) {
        in.transferTo(java.io.OutputStream.nullOutputStream());
      }
      all.update(one.digest());
    }
    return HexFormat.of().formatHex(all.digest());
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Evaluates every validation row of {@code shards} in batches of {@code batch} rows with the
   * trainer's {@link DatasetPerplexity} (what {@code danlu eval ppl --data} runs).
   *
   * @param adapter null for the base model alone
   */
  public static Result evaluate(LlamaWeights w, LoraAdapter adapter, Path shards, int batch)
      throws IOException {
    DatasetPerplexity.Result r = DatasetPerplexity.evaluate(w, adapter, shards, batch);
    return new Result(r.loss(), r.tokens(), r.rows());
  }
}
