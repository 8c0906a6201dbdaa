package dev.danlu.train.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.tokenizer.SentencePieceTokenizer;
import dev.danlu.train.recipe.RecipeTestSupport;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A 2-process {@code train-local} run of the real stories260K model on a few hundred blocks of real
 * English text tokenized with its own 512-piece tokenizer: completes, and the loss falls.
 */
class Stories260kTrainLocalTest {
  @TempDir Path tmp;

  @Test
  void twoProcessRunOnRealTextCompletesAndLossFalls() throws Exception {
    Path model = dev.danlu.testkit.Prereq.shared("fixtures/stories260K");
    Path english = dev.danlu.testkit.Prereq.cached("corpora/english");
    Path tokFile = model.resolve("tokenizer.model");
    SentencePieceTokenizer tok = SentencePieceTokenizer.load(tokFile);
    int block = 64;
    List<int[]> blocks = new ArrayList<>();
    List<Path> files;
    try (Stream<Path> s = Files.list(english)) {
      files = s.filter(p -> p.toString().endsWith(".txt")).sorted().toList();
    }
    List<Integer> stream = new ArrayList<>();
    for (Path f : files) {
      for (int id : tok.encode(Files.readString(f))) {
        stream.add(id);
      }
      stream.add(2); // eos between documents, as group_texts sees them
      if (stream.size() >= 340 * block) {
        break;
      }
    }
    for (int i = 0; i + block <= stream.size() && blocks.size() < 340; i += block) {
      int[] b = new int[block];
      for (int t = 0; t < block; t++) {
        b[t] = stream.get(i + t);
      }
      blocks.add(b);
    }
    assertEquals(340, blocks.size());
    String sha =
        HexFormat.of()
            .formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(tokFile)));
    Path data =
        RecipeTestSupport.dataset(
            tmp.resolve("data"), blocks.subList(0, 320), blocks.subList(320, 340), block, 512, sha);
    Path yaml = tmp.resolve("stories.yaml");
    Files.writeString(
        yaml,
        String.join(
            "\n",
            "model_name_or_path: " + model,
            "tokenizer_name_or_path: " + tokFile,
            "dataset_dir: " + data,
            "output_dir: " + tmp.resolve("out"),
            "max_steps: 30",
            "per_device_train_batch_size: 2",
            "gradient_accumulation_steps: 1",
            "learning_rate: 5.0e-3",
            "warmup_ratio: 0.05",
            "lora_rank: 8",
            "lora_alpha: 16",
            "lora_dropout: 0.05",
            "modules_to_save: embed_tokens,lm_head",
            "logging_steps: 1",
            "save_steps: 15",
            "eval_steps: 15",
            ""));
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    int rc =
        TrainLocalCli.run(
            new String[] {"--config", yaml.toString(), "--nproc", "2"},
            Map.of(),
            new PrintStream(log, true, StandardCharsets.UTF_8));
    String out = log.toString(StandardCharsets.UTF_8);
    assertEquals(0, rc, out);
    List<Double> losses = new ArrayList<>();
    Matcher m = Pattern.compile("\\[rank 0\\] step (\\d+)/30 loss ([0-9.]+)").matcher(out);
    while (m.find()) {
      losses.add(Double.parseDouble(m.group(2)));
    }
    assertEquals(30, losses.size(), out);
    double first = losses.subList(0, 5).stream().mapToDouble(d -> d).average().orElseThrow();
    double last = losses.subList(25, 30).stream().mapToDouble(d -> d).average().orElseThrow();
    System.out.printf(
        "stories260K train-local 2 ranks: loss first-5 %.4f -> last-5 %.4f%n", first, last);
    out.lines()
        .filter(l -> l.contains("eval step") || l.contains("optimizer state") || l.contains("/30 "))
        .forEach(System.out::println);
    assertTrue(last < first, "loss did not fall: " + first + " -> " + last + "\n" + out);
    assertTrue(out.contains("eval step 30: eval_loss"), out);
    assertTrue(Files.exists(tmp.resolve("out/pt_lora_model/adapter_model.safetensors")));
  }
}
