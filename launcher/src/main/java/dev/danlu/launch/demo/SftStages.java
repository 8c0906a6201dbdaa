package dev.danlu.launch.demo;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.danlu.data.sft.Alpaca2Template;
import dev.danlu.data.sft.SftManifest;
import dev.danlu.jobs.prep.PrepSftCli;
import dev.danlu.launch.TrainCommand;
import dev.danlu.train.checkpoint.MergeCli;
import dev.danlu.train.cli.GenerateCli;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The demo's second half, the Alpaca-2 path: instruction records made from the demo corpus
 * ("continue this line": the first words of a sentence in, the next ones out) → {@code prep-sft} on
 * Spark local[2] → {@code stage: sft} continuing the pretraining adapter (conf/tiny-sft.yaml) →
 * {@code merge} → one answer through {@code generate --instruction}.
 */
public final class SftStages {
  /** The instruction every demo record carries; the chat question uses it too. */
  public static final String INSTRUCTION = "Continue this line from a State of the Union address.";

  static final int MAX_SEQ_LENGTH = 96;
  static final int RECORDS = 400;
  static final int WORDS_IN = 6;
  static final int WORDS_OUT = 6;

  /** What the stages left: the chat answer (null when a stage failed) and the question's input. */
  public record Result(boolean ok, String question, String answer) {}

  private SftStages() {}

  /**
   * Runs the four stages into {@code work} (reusing what is up to date), adding a row each to
   * {@code table}.
   *
   * @param model the base model directory (with its tokenizer.model)
   * @param ptAdapter the pretraining adapter SFT continues
   */
  public static Result run(
      Path repo,
      Path work,
      Path corpus,
      Path model,
      Path ptAdapter,
      StageTable table,
      PrintStream out)
      throws Exception {
    Path records = work.resolve("sft/instructions.jsonl");
    Path shards = work.resolve("sft-shards");
    Path output = work.resolve("sft-output");
    Path adapter = output.resolve("sft_lora_model");
    Path merged = work.resolve("merged");

    // 7. instruction data: records from the corpus, then prep-sft
    long t = System.nanoTime();
    List<String[]> pairs = continuations(corpus, RECORDS);
    writeRecords(records, pairs);
    long before = version(shards);
    int rc =
        PrepSftCli.run(
            new String[] {
              "--input", records.toString(),
              "--tokenizer", model.resolve("tokenizer.model").toString(),
              "--max-seq-length", Integer.toString(MAX_SEQ_LENGTH),
              "--output", shards.toString(),
              "--validation-fraction", "0.05",
              "--master", "local[2]"
            });
    if (rc != 0) {
      table.add("sft data", "FAILED (exit " + rc + ")", secs(t), shards.toString());
      return new Result(false, null, null);
    }
    boolean upToDate = before > 0 && version(shards) == before;
    out.printf(
        "danlu demo: %d instruction records (\"%s\" + the first %d words of a sentence -> the"
            + " next %d) -> %s%n",
        pairs.size(), INSTRUCTION, WORDS_IN, WORDS_OUT, shards);
    table.add("sft data", upToDate ? "up to date" : "done", secs(t), shards.toString());

    // 8. SFT: 2 ranks in Spark local mode, continuing the pretraining adapter
    t = System.nanoTime();
    if (!upToDate && Files.exists(output)) {
      out.println("danlu demo: new instruction data: SFT starts over in " + output);
      dev.danlu.launch.DemoCommand.deleteTree(output);
    }
    rc =
        TrainCommand.run(
            new String[] {
              "--config",
              repo.resolve("conf/tiny-sft.yaml").toString(),
              "model_name_or_path=" + model,
              "peft_path=" + ptAdapter,
              "dataset_dir=" + shards,
              "output_dir=" + output,
              "world_size=2",
              "--progress-interval-seconds",
              "5"
            });
    if (rc != 0 || !Files.isRegularFile(adapter.resolve("adapter_config.json"))) {
      table.add("sft", "FAILED (exit " + rc + ")", secs(t), output.toString());
      return new Result(false, null, null);
    }
    table.add("sft", "done", secs(t), adapter.toString());

    // 9. merge the SFT adapter into the base model
    t = System.nanoTime();
    rc =
        MergeCli.run(
            new String[] {
              "--base", model.toString(),
              "--adapter", adapter.toString(),
              "--output", merged.toString(),
              "--overwrite"
            });
    if (rc != 0) {
      table.add("merge", "FAILED (exit " + rc + ")", secs(t), merged.toString());
      return new Result(false, null, null);
    }
    table.add("merge", "done", secs(t), merged.toString());

    // 10. one answer from the merged model with the Alpaca-2 template, greedy
    t = System.nanoTime();
    String[] q = pairs.get(pairs.size() - 1); // a validation-side record is as good as any
    String question = Alpaca2Template.instruction(INSTRUCTION, q[0]);
    ByteArrayOutputStream text = new ByteArrayOutputStream();
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    rc =
        GenerateCli.run(
            new String[] {
              "--model",
              merged.toString(),
              "--instruction",
              question,
              "--temperature",
              "0",
              "--max-new-tokens",
              "16"
            },
            new PrintStream(text, true, StandardCharsets.UTF_8),
            new PrintStream(log, true, StandardCharsets.UTF_8));
    if (rc != 0) {
      out.print(log.toString(StandardCharsets.UTF_8));
      table.add("chat", "FAILED (exit " + rc + ")", secs(t), "");
      return new Result(false, question, null);
    }
    String answer = text.toString(StandardCharsets.UTF_8).strip();
    out.println("danlu demo: instruction: " + question.replace("\n", " / "));
    out.println("danlu demo: answer of the merged SFT model: " + answer);
    table.add("chat", "done", secs(t), "(printed above)");
    return new Result(true, question, answer);
  }

  /**
   * (first words, next words) of the corpus' sentences with enough words, in file order, at most
   * {@code max}.
   */
  static List<String[]> continuations(Path corpus, int max) throws IOException {
    List<Path> files;
    try (Stream<Path> s = Files.list(corpus)) {
      files = s.filter(p -> p.toString().endsWith(".txt")).sorted().toList();
    }
    List<String[]> out = new ArrayList<>();
    for (Path f : files) {
      for (String sentence : Files.readString(f, StandardCharsets.UTF_8).split("[.!?]\\s+")) {
        String[] w = sentence.strip().split("\\s+");
        if (w.length < WORDS_IN + WORDS_OUT) {
          continue;
        }
        out.add(
            new String[] {
              String.join(" ", List.of(w).subList(0, WORDS_IN)),
              String.join(" ", List.of(w).subList(WORDS_IN, WORDS_IN + WORDS_OUT))
            });
        if (out.size() == max) {
          return out;
        }
      }
    }
    if (out.isEmpty()) {
      throw new IOException(corpus + ": no sentence of " + (WORDS_IN + WORDS_OUT) + "+ words");
    }
    return out;
  }

  /** JSON lines {instruction, input, output}; rewritten only when the content changes. */
  static void writeRecords(Path file, List<String[]> pairs) throws IOException {
    ObjectMapper om = new ObjectMapper();
    StringBuilder sb = new StringBuilder();
    for (String[] p : pairs) {
      ObjectNode n = om.createObjectNode();
      n.put("instruction", INSTRUCTION);
      n.put("input", p[0]);
      n.put("output", p[1]);
      sb.append(om.writeValueAsString(n)).append('\n');
    }
    byte[] bytes = sb.toString().getBytes(StandardCharsets.UTF_8);
    // prep-sft reuses a file by path, size and mtime: leave an unchanged file untouched
    if (Files.isRegularFile(file) && java.util.Arrays.equals(Files.readAllBytes(file), bytes)) {
      return;
    }
    Files.createDirectories(file.getParent());
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    Files.write(tmp, bytes);
    Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
  }

  private static long version(Path shards) {
    try {
      return SftManifest.readCurrent(shards).version();
    } catch (IOException | RuntimeException e) {
      return 0;
    }
  }

  private static double secs(long t0) {
    return (System.nanoTime() - t0) / 1e9;
  }
}
