package dev.danlu.launch.demo;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.danlu.train.comm.Communicator;
import dev.danlu.train.comm.LocalCommunicator;
import dev.danlu.train.data.ShardBlocks;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.recipe.Evaluator;
import dev.danlu.train.recipe.Objective;
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
 * Validation perplexity of a model (optionally with a LoRA adapter applied unmerged) on a prepared
 * dataset's validation split: exp of the cross-entropy averaged over every predicted token, the
 * number run_clm_pt reports as {@code perplexity = exp(eval_loss)} — but token-weighted over the
 * whole split rather than a mean of per-batch means.
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
   * Evaluates every validation row of {@code shards} in batches of {@code batch} rows.
   *
   * @param adapter null for the base model alone
   */
  public static Result evaluate(LlamaWeights w, LoraAdapter adapter, Path shards, int batch)
      throws IOException {
    try (ShardBlocks data = ShardBlocks.open(shards, 0, null, w.config().vocabSize());
        Communicator one = LocalCommunicator.group(1).get(0)) {
      long rows = data.validationRows();
      if (rows == 0) {
        throw new IOException(
            shards
                + ": the validation split is empty; prepare the data with a larger"
                + " --validation-fraction or more text");
      }
      // the training loop's evaluator, on a single in-process rank
      Evaluator.Result r =
          new Evaluator(w.config(), w, adapter, data, Objective.CAUSAL_LM, batch, one).run();
      return new Result(r.loss(), r.tokens(), rows);
    }
  }
}
