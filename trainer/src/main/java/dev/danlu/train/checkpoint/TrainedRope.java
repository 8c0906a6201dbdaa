package dev.danlu.train.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;

/**
 * {@code rope_scaling.json} beside a saved adapter: the rotary settings of the model config the
 * adapter was trained under, as the two config.json keys {@code rope_scaling} and {@code
 * max_position_embeddings} — position interpolation ({@code rope_scaling: linear} in the training
 * config) turns LLaMA-2's {@code 4096} into the reference 16K models' {@code {"type": "linear",
 * "factor": 4.0}, 16384}, and an adapter trained that way is only right under them. PEFT's
 * adapter_config.json has no field for these (and PEFT versions differ on unknown fields), so they
 * travel in a file of their own, which {@code danlu merge} writes into the merged model's
 * config.json.
 */
public final class TrainedRope {
  /** The file's name in the adapter directory. */
  public static final String FILE = "rope_scaling.json";

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  /**
   * @param type {@code linear} or {@code dynamic} (config.json's rope_scaling.type)
   * @param factor rope_scaling.factor
   * @param maxPositionEmbeddings the trained model's max_position_embeddings
   */
  public record Settings(String type, double factor, int maxPositionEmbeddings) {}

  private TrainedRope() {}

  /** Writes {@code dir/rope_scaling.json} (atomically). */
  public static void write(Path dir, Settings s) throws IOException {
    ObjectNode n = JSON.createObjectNode();
    apply(s, n);
    AtomicFiles.writeJson(JSON, dir.resolve(FILE), n);
  }

  /** The settings in {@code dir/rope_scaling.json}, empty when the file is absent. */
  public static Optional<Settings> read(Path dir) throws IOException {
    Path p = dir.resolve(FILE);
    if (!Files.isRegularFile(p)) {
      return Optional.empty();
    }
    JsonNode n = JSON.readTree(p.toFile());
    JsonNode rs = n.path("rope_scaling");
    String type = rs.path("type").asText("").toLowerCase(Locale.ROOT);
    double factor = rs.path("factor").asDouble(Double.NaN);
    int maxPos = n.path("max_position_embeddings").asInt(0);
    if (!(type.equals("linear") || type.equals("dynamic"))) {
      throw new IOException(
          p + ": rope_scaling.type must be \"linear\" or \"dynamic\", got " + rs.path("type"));
    }
    if (!(factor >= 1)) {
      throw new IOException(
          p + ": rope_scaling.factor must be a number >= 1, got " + rs.path("factor"));
    }
    if (maxPos <= 0) {
      throw new IOException(
          p
              + ": max_position_embeddings must be a positive integer, got "
              + n.path("max_position_embeddings"));
    }
    return Optional.of(new Settings(type, factor, maxPos));
  }

  /** Sets config.json's rope_scaling and max_position_embeddings to {@code s}. */
  public static void apply(Settings s, ObjectNode config) {
    ObjectNode rs = config.putObject("rope_scaling");
    rs.put("type", s.type());
    rs.put("factor", s.factor());
    config.put("max_position_embeddings", s.maxPositionEmbeddings());
  }
}
