package dev.danlu.train.config;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * Binds a YAML file plus {@code key=value} overrides to a {@link TrainConfig}: defaults ← file ←
 * overrides. Unknown keys are errors (with the file line and the closest known key); run_pt.sh
 * flags that mean nothing here are accepted with a warning saying why, so a user's settings carry
 * over. Every problem found is reported at once, not one per run.
 */
public final class ConfigLoader {
  private static final ObjectMapper YAML =
      new ObjectMapper(
              new YAMLFactory()
                  .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
                  .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES))
          .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
          .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
          .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY);

  private static final ObjectMapper CANONICAL_JSON =
      new ObjectMapper().enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS);

  /** run_pt.sh / TrainingArguments flags that have no effect in danlu, and why. */
  static final Map<String, String> COMPATIBILITY_KEYS =
      Map.ofEntries(
          Map.entry("deepspeed", "danlu's ZeRO-2 is built in; there is no DeepSpeed config file"),
          Map.entry("data_cache_dir", "prepared shards are the cache; see `danlu prep`"),
          Map.entry("preprocessing_num_workers", "tokenization runs in `danlu prep` on Spark"),
          Map.entry("validation_split_percentage", "set at prep time: --validation-fraction"),
          Map.entry(
              "validation_file",
              "SFT validation examples are prepared with the data: danlu prep-sft"
                  + " --validation-file"),
          Map.entry("do_train", "`danlu train` always trains"),
          Map.entry("do_eval", "evaluation runs when eval_steps > 0"),
          Map.entry("overwrite_output_dir", "danlu resumes from output_dir's newest checkpoint"),
          Map.entry("ddp_timeout", "see the communicator timeouts"),
          Map.entry("ddp_find_unused_parameters", "danlu's trainer has no unused parameters"),
          Map.entry("logging_strategy", "logging is by logging_steps"),
          Map.entry("save_strategy", "saving is by save_steps"),
          Map.entry("evaluation_strategy", "evaluation is by eval_steps"),
          Map.entry("report_to", "progress goes to the console, logs and the Spark UI"));

  /**
   * Keys of earlier danlu versions, now known by another name: still read, with a warning. The old
   * value must be valid for the new key.
   */
  static final Map<String, String> RENAMED_KEYS = Map.of("communicator", "ddp_backend");

  private ConfigLoader() {}

  /** The result of loading: the config and warnings for keys that were accepted but ignored. */
  public record Loaded(TrainConfig config, List<String> warnings) {}

  /** Loads {@code yamlFile} with {@code overrides} of the form {@code key=value}. */
  public static Loaded load(Path yamlFile, List<String> overrides) {
    String source = yamlFile.toString();
    String text;
    try {
      text = Files.readString(yamlFile, StandardCharsets.UTF_8);
    } catch (NoSuchFileException e) {
      throw new ConfigException(source + ": config file does not exist");
    } catch (IOException e) {
      throw new ConfigException(source + ": cannot read config file: " + e.getMessage(), e);
    }
    return load(text, source, overrides);
  }

  /** Loads YAML text (named {@code source} in messages) with overrides. */
  public static Loaded load(String yamlText, String source, List<String> overrides) {
    Map<String, Integer> lines = new LinkedHashMap<>();
    ObjectNode fromFile = parse(yamlText, source, lines);
    List<String> problems = new ArrayList<>();
    List<String> warnings = new ArrayList<>();
    Set<String> known = knownKeys();

    // the stage decides the defaults (run_sft.sh's differ from run_pt.sh's); the last override
    // setting it wins, as for any key
    String stage = fromFile.path("stage").asText("pt");
    for (String o : overrides) {
      int eq = o.indexOf('=');
      if (eq > 0 && o.substring(0, eq).trim().equals("stage")) {
        stage = o.substring(eq + 1).trim();
      }
    }
    ObjectNode merged = Defaults.tree(stage);
    // a file that sets a key under both its old and its new name is ambiguous: refuse it
    RENAMED_KEYS.forEach(
        (old, now) -> {
          if (fromFile.has(old) && fromFile.has(now)) {
            problems.add(
                source
                    + " lines "
                    + lines.getOrDefault(old, 0)
                    + " and "
                    + lines.getOrDefault(now, 0)
                    + ": both '"
                    + old
                    + "' (the old name) and '"
                    + now
                    + "' are set; keep only '"
                    + now
                    + "'");
          }
        });
    fromFile
        .fields()
        .forEachRemaining(
            e -> {
              String where = source + " line " + lines.getOrDefault(e.getKey(), 0);
              accept(e.getKey(), e.getValue(), where, known, merged, problems, warnings);
            });
    for (String override : overrides) {
      int eq = override.indexOf('=');
      if (eq <= 0) {
        problems.add("override '" + override + "': expected key=value, e.g. learning_rate=1e-4");
        continue;
      }
      String key = override.substring(0, eq).trim();
      String value = override.substring(eq + 1).trim();
      accept(key, TextNode.valueOf(value), "override " + key, known, merged, problems, warnings);
    }
    for (String key : TrainConfig.LIST_KEYS) {
      JsonNode v = merged.get(key);
      if (v != null && v.isTextual()) {
        ArrayNode list = merged.putArray(key);
        Arrays.stream(v.asText().split(","))
            .map(String::trim)
            .filter(s -> !s.isEmpty())
            .forEach(list::add);
      }
    }
    if (!problems.isEmpty()) {
      throw new ConfigException(report(source, problems));
    }
    TrainConfig config;
    try {
      config = YAML.treeToValue(merged, TrainConfig.class);
    } catch (MismatchedInputException e) {
      String key = e.getPath().isEmpty() ? "?" : e.getPath().get(0).getFieldName();
      String value = merged.has(key) ? merged.get(key).toString() : "null";
      String expected =
          e instanceof InvalidFormatException ife
              ? ife.getTargetType().getSimpleName().toLowerCase()
              : "a value of another type";
      throw new ConfigException(
          report(
              source,
              List.of(
                  "key '"
                      + key
                      + "' ("
                      + where(key, source, lines, overrides)
                      + "): value "
                      + value
                      + " is not "
                      + expected
                      + allowedValues(e))),
          e);
    } catch (JsonProcessingException e) {
      throw new ConfigException(source + ": " + e.getOriginalMessage(), e);
    }
    problems.addAll(Validation.check(config));
    if (!problems.isEmpty()) {
      throw new ConfigException(report(source, problems));
    }
    return new Loaded(config, warnings);
  }

  private static void accept(
      String key,
      JsonNode value,
      String where,
      Set<String> known,
      ObjectNode merged,
      List<String> problems,
      List<String> warnings) {
    if (known.contains(key)) {
      merged.set(key, value);
    } else if (RENAMED_KEYS.containsKey(key)) {
      String now = RENAMED_KEYS.get(key);
      merged.set(now, value);
      warnings.add(
          where
              + ": '"
              + key
              + "' is now called '"
              + now
              + "'; please rename it (its value "
              + value
              + " is checked as "
              + now
              + ")");
    } else if (COMPATIBILITY_KEYS.containsKey(key)) {
      warnings.add(where + ": '" + key + "' is ignored: " + COMPATIBILITY_KEYS.get(key));
    } else {
      String hint = closest(key, known);
      problems.add(
          where
              + ": unknown key '"
              + key
              + "'"
              + (hint == null ? "" : " (did you mean '" + hint + "'?)"));
    }
  }

  /** The effective configuration as YAML, for the start-of-run log. */
  public static String toYaml(TrainConfig config) {
    try {
      return YAML.writeValueAsString(config);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /** sha256 of the canonical JSON of the whole config: recorded in checkpoints. */
  public static String sha256(TrainConfig config) {
    try {
      byte[] json = CANONICAL_JSON.writeValueAsBytes(new TreeMap<>(asMap(config)));
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(json));
    } catch (JsonProcessingException | NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @SuppressWarnings("unchecked")
  static Map<String, Object> asMap(TrainConfig config) {
    return CANONICAL_JSON.convertValue(config, Map.class);
  }

  static Set<String> knownKeys() {
    return Arrays.stream(TrainConfig.class.getRecordComponents())
        .map(c -> c.getAccessor().getAnnotation(JsonProperty.class).value())
        .collect(Collectors.toCollection(java.util.LinkedHashSet::new));
  }

  private static ObjectNode parse(String text, String source, Map<String, Integer> lines) {
    try (JsonParser p = YAML.getFactory().createParser(text)) {
      // Top-level key lines, for messages; the tree itself is read by a second pass.
      int depth = 0;
      for (JsonToken t = p.nextToken(); t != null; t = p.nextToken()) {
        if (t.isStructStart()) {
          depth++;
        } else if (t.isStructEnd()) {
          depth--;
        } else if (t == JsonToken.FIELD_NAME && depth == 1) {
          lines.putIfAbsent(p.currentName(), p.currentTokenLocation().getLineNr());
        }
      }
    } catch (JsonProcessingException e) {
      throw new ConfigException(
          source
              + " line "
              + e.getLocation().getLineNr()
              + ": not valid YAML: "
              + e.getOriginalMessage());
    } catch (IOException e) {
      throw new ConfigException(source + ": " + e.getMessage(), e);
    }
    JsonNode root;
    try {
      root = YAML.readTree(text);
    } catch (JsonProcessingException e) {
      throw new ConfigException(
          source
              + " line "
              + (e.getLocation() == null ? 0 : e.getLocation().getLineNr())
              + ": "
              + e.getOriginalMessage());
    }
    if (root == null || root.isMissingNode() || root.isNull()) {
      return JsonNodeFactory.instance.objectNode();
    }
    if (!root.isObject()) {
      throw new ConfigException(source + ": expected a mapping of key: value at the top level");
    }
    return (ObjectNode) root;
  }

  private static String where(
      String key, String source, Map<String, Integer> lines, List<String> overrides) {
    for (String o : overrides) {
      if (o.startsWith(key + "=")) {
        return "override " + o;
      }
    }
    return lines.containsKey(key) ? source + " line " + lines.get(key) : "default";
  }

  private static String allowedValues(MismatchedInputException e) {
    Class<?> target = e.getTargetType();
    if (target != null && target.isEnum()) {
      return "; allowed: "
          + Arrays.stream(target.getEnumConstants())
              .map(c -> ((Enum<?>) c).name().toLowerCase())
              .collect(Collectors.joining(", "));
    }
    return "";
  }

  private static String report(String source, List<String> problems) {
    return "invalid training config "
        + source
        + ":\n  - "
        + String.join("\n  - ", problems)
        + "\n(keys are run_pt.sh / TrainingArguments names; see conf/tiny-pretrain.yaml)";
  }

  /** The known key at the smallest edit distance, if it is close enough to be a typo. */
  static String closest(String key, Set<String> known) {
    String best = null;
    int bestDistance = Integer.MAX_VALUE;
    for (String k : known) {
      int d = editDistance(key, k);
      if (d < bestDistance) {
        bestDistance = d;
        best = k;
      }
    }
    return bestDistance <= Math.max(2, key.length() / 4) ? best : null;
  }

  private static int editDistance(String a, String b) {
    int[] prev = new int[b.length() + 1];
    int[] cur = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) {
      prev[j] = j;
    }
    for (int i = 1; i <= a.length(); i++) {
      cur[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int sub = prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
        cur[j] = Math.min(sub, Math.min(prev[j] + 1, cur[j - 1] + 1));
      }
      int[] t = prev;
      prev = cur;
      cur = t;
    }
    return prev[b.length()];
  }
}
