package dev.danlu.train.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * The weights of a Hugging Face model directory: either one {@code model.safetensors} or shards
 * {@code model-0000X-of-0000N.safetensors} listed in {@code model.safetensors.index.json}. Every
 * shard is opened (and its header validated) up front, and the index is checked against the shards,
 * so a missing or mismatched shard fails at open rather than halfway through a load.
 *
 * <p>PyTorch pickles ({@code pytorch_model*.bin}) are refused: unpickling runs arbitrary code.
 */
public final class HfCheckpoint implements AutoCloseable {
  public static final String SINGLE = "model.safetensors";
  public static final String INDEX = "model.safetensors.index.json";

  private final Path dir;
  private final Map<String, SafeTensors> byTensor;
  private final List<SafeTensors> shards;

  private HfCheckpoint(Path dir, Map<String, SafeTensors> byTensor, List<SafeTensors> shards) {
    this.dir = dir;
    this.byTensor = byTensor;
    this.shards = shards;
  }

  /**
   * Opens a model directory.
   *
   * @throws IOException if neither layout is present (with a hint when only pickles are), the index
   *     names a missing shard or tensor, or any shard header is invalid
   */
  public static HfCheckpoint open(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      throw new IOException(dir + ": not a directory (expected a Hugging Face model directory)");
    }
    Path index = dir.resolve(INDEX);
    Path single = dir.resolve(SINGLE);
    if (Files.isRegularFile(index)) {
      return openSharded(dir, index);
    }
    if (Files.isRegularFile(single)) {
      SafeTensors st = SafeTensors.open(single);
      Map<String, SafeTensors> map = new LinkedHashMap<>();
      for (String n : st.names()) {
        map.put(n, st);
      }
      return new HfCheckpoint(dir, Collections.unmodifiableMap(map), List.of(st));
    }
    List<String> pickles;
    try (Stream<Path> s = Files.list(dir)) {
      pickles =
          s.map(p -> p.getFileName().toString())
              .filter(n -> n.endsWith(".bin") || n.endsWith(".pt") || n.endsWith(".pth"))
              .sorted()
              .toList();
    }
    if (!pickles.isEmpty()) {
      throw new IOException(
          dir
              + ": holds only PyTorch pickle weights "
              + pickles
              + "; danlu never reads pickles (loading one can run arbitrary code). Convert them"
              + " once to safetensors, e.g. in Python: model.save_pretrained(out,"
              + " safe_serialization=True)");
    }
    throw new IOException(dir + ": neither " + SINGLE + " nor " + INDEX + " found");
  }

  private static HfCheckpoint openSharded(Path dir, Path index) throws IOException {
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(index.toFile());
    } catch (IOException e) {
      throw new IOException(index + ": not valid JSON: " + e.getMessage(), e);
    }
    JsonNode wm = root == null ? null : root.get("weight_map");
    if (wm == null || !wm.isObject()) {
      throw new IOException(index + ": missing the \"weight_map\" object");
    }
    Map<String, SafeTensors> files = new LinkedHashMap<>();
    Map<String, SafeTensors> byTensor = new LinkedHashMap<>();
    try {
      for (Iterator<Map.Entry<String, JsonNode>> it = wm.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        String shardName = e.getValue().asText();
        if (shardName.contains("/") || shardName.contains("\\") || shardName.startsWith(".")) {
          throw new IOException(
              index + ": shard name '" + shardName + "' must be a plain file name");
        }
        SafeTensors st = files.get(shardName);
        if (st == null) {
          Path p = dir.resolve(shardName);
          if (!Files.isRegularFile(p)) {
            throw new IOException(
                index
                    + ": tensor '"
                    + e.getKey()
                    + "' is in shard "
                    + shardName
                    + ", which does not exist in "
                    + dir);
          }
          st = SafeTensors.open(p);
          files.put(shardName, st);
        }
        if (!st.contains(e.getKey())) {
          throw new IOException(
              index + ": says tensor '" + e.getKey() + "' is in " + shardName + " but it is not");
        }
        byTensor.put(e.getKey(), st);
      }
      for (SafeTensors st : files.values()) {
        for (String n : st.names()) {
          if (byTensor.get(n) != st) {
            throw new IOException(
                st.file() + ": holds tensor '" + n + "' which " + index + " does not map here");
          }
        }
      }
    } catch (IOException | RuntimeException e) {
      files.values().forEach(SafeTensors::close);
      throw e;
    }
    return new HfCheckpoint(
        dir, Collections.unmodifiableMap(byTensor), List.copyOf(new ArrayList<>(files.values())));
  }

  /** The directory this was opened from. */
  public Path dir() {
    return dir;
  }

  /** All tensor names (index order for sharded checkpoints, file order otherwise). */
  public Set<String> names() {
    return byTensor.keySet();
  }

  /** Whether a tensor of this name exists. */
  public boolean contains(String name) {
    return byTensor.containsKey(name);
  }

  /** The open shard holding a tensor. */
  public SafeTensors shardOf(String name) {
    SafeTensors st = byTensor.get(name);
    if (st == null) {
      throw new IllegalArgumentException(
          dir
              + ": no tensor named '"
              + name
              + "' in this checkpoint ("
              + byTensor.size()
              + " tensors)");
    }
    return st;
  }

  /** The header entry of a tensor (offsets relative to its shard's data section). */
  public TensorInfo info(String name) {
    return shardOf(name).info(name);
  }

  /** Reads a float tensor as float32, row-major. */
  public float[] readFloats(String name) {
    return shardOf(name).readFloats(name);
  }

  /** Raw little-endian bytes of a tensor (under 2 GiB). */
  public ByteBuffer readBytes(String name) {
    return shardOf(name).readBytes(name);
  }

  @Override
  public void close() {
    shards.forEach(SafeTensors::close);
  }
}
