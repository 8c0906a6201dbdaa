package dev.danlu.train.eval;

import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.train.cli.ChatPrompt;
import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The questions of a multiple-choice run, ready for the model: every subject CSV of a directory
 * read and checked, its few-shot history built from the dev CSV, each prompt tokenized as the
 * reference's {@code tokenizer(instruction)} does (BOS, then the text; see {@link ChatPrompt#ids}),
 * shortened when it does not fit the model's context, and the prefix its subject's prompts share
 * (for the KV cache). Built on the driver; the questions travel to the executors.
 */
public final class McSuite {
  /** One prompt to score. */
  public record Question(
      String subject, int index, String answer, int[] ids, int shots, int prefixLen)
      implements Serializable {}

  /** One subject (CSV file stem) and its questions in row order. */
  public record Subject(String stem, String name, Path file, List<Question> questions) {
    /** Few-shot examples dropped over all questions to fit the context. */
    public int droppedShots(int shots) {
      int n = 0;
      for (Question q : questions) {
        n += shots - q.shots();
      }
      return n;
    }
  }

  /** The options of a run. */
  public record Options(
      McBenchmark benchmark,
      Path data,
      Path dev,
      int shots,
      boolean withPrompt,
      boolean noTruncate) {}

  private McSuite() {}

  /**
   * Reads every {@code *.csv} in {@code o.data()} (sorted by name) and builds the questions.
   *
   * @param maxLen the model's context (max_position_embeddings): longer prompts lose few-shot
   *     examples from the front, or fail with {@code noTruncate}
   */
  public static List<Subject> load(Options o, TextTokenizer tok, int maxLen) throws IOException {
    if (o.shots() < 0 || o.shots() > 5) {
      throw new IllegalArgumentException("--shots must be 0..5, got " + o.shots());
    }
    if (o.shots() > 0 && o.dev() == null) {
      throw new IllegalArgumentException("--shots " + o.shots() + " needs --dev <dir of dev CSVs>");
    }
    if (!Files.isDirectory(o.data())) {
      throw new IOException(o.data() + ": not a directory of subject CSVs");
    }
    List<Path> files;
    try (Stream<Path> s = Files.list(o.data())) {
      files = s.filter(p -> p.getFileName().toString().endsWith(".csv")).sorted().toList();
    }
    if (files.isEmpty()) {
      throw new IOException(o.data() + ": no *.csv subject files");
    }
    List<Subject> out = new ArrayList<>();
    for (Path f : files) {
      out.add(subject(o, f, tok, maxLen));
    }
    return out;
  }

  static Subject subject(Options o, Path file, TextTokenizer tok, int maxLen) throws IOException {
    String fileName = file.getFileName().toString();
    String stem = fileName.substring(0, fileName.length() - ".csv".length());
    McBenchmark b = o.benchmark();
    String name = b.subjectName(stem);
    List<McPrompt.Example> test = examples(b, McCsv.read(file), false);
    if (test.isEmpty()) {
      throw new IOException(file + ": no questions (only a header)");
    }
    List<McPrompt.Example> dev = List.of();
    if (o.shots() > 0) {
      Path devFile = b.devFile(o.dev(), stem);
      if (!Files.isRegularFile(devFile)) {
        throw new IOException(devFile + ": dev CSV of subject " + stem + " not found");
      }
      dev = examples(b, McCsv.read(devFile), true);
      if (dev.size() < o.shots()) {
        throw new IOException(
            devFile + ": " + dev.size() + " dev questions, fewer than --shots " + o.shots());
      }
      dev = dev.subList(0, o.shots());
    }
    List<Question> qs = new ArrayList<>();
    List<int[]> ids = new ArrayList<>();
    List<Integer> used = new ArrayList<>();
    for (McPrompt.Example e : test) {
      String question = McPrompt.question(b, e, o.withPrompt());
      int dropped = 0;
      while (true) {
        List<McPrompt.Example> shots = dev.subList(dropped, dev.size());
        String history = o.shots() > 0 ? McPrompt.history(b, name, shots, o.withPrompt()) : "";
        int[] t = ChatPrompt.ids(history + question, tok);
        if (t.length <= maxLen) {
          ids.add(t);
          used.add(shots.size());
          break;
        }
        if (o.noTruncate() || shots.isEmpty()) {
          throw new IOException(
              file
                  + " line "
                  + e.line()
                  + ": the prompt is "
                  + t.length
                  + " tokens with "
                  + shots.size()
                  + " examples, longer than the model's context of "
                  + maxLen
                  + (o.noTruncate()
                      ? " (without --no-truncate, few-shot examples are dropped until it fits)"
                      : " even without few-shot examples"));
        }
        dropped++;
      }
    }
    // the prefix shared by all prompts that kept the same number of examples
    java.util.Map<Integer, int[]> group = new java.util.HashMap<>();
    java.util.Map<Integer, Integer> lcp = new java.util.HashMap<>();
    for (int i = 0; i < test.size(); i++) {
      int[] t = ids.get(i);
      int[] first = group.putIfAbsent(used.get(i), t);
      if (first == null) {
        lcp.put(used.get(i), t.length);
      } else {
        int k = 0;
        int max = Math.min(lcp.get(used.get(i)), t.length);
        while (k < max && first[k] == t[k]) {
          k++;
        }
        lcp.put(used.get(i), k);
      }
    }
    for (int i = 0; i < test.size(); i++) {
      McPrompt.Example e = test.get(i);
      int[] t = ids.get(i);
      // a function of the whole subject, so every Spark task uses the same prefix for a question
      // however the questions were partitioned; the last token is always fed to get the logits
      int prefix = Math.min(lcp.get(used.get(i)), t.length - 1);
      qs.add(new Question(stem, e.index(), e.answer(), t, used.get(i), prefix));
    }
    return new Subject(stem, name, file, qs);
  }

  /** Rows of a subject CSV as examples; {@code needAnswer} for dev files. */
  static List<McPrompt.Example> examples(McBenchmark b, McCsv csv, boolean needAnswer)
      throws IOException {
    int q = csv.column(b.questionColumn());
    if (q < 0) {
      throw new IOException(
          csv.file() + ": no '" + b.questionColumn() + "' column (header " + csv.header() + ")");
    }
    int[] opt = new int[4];
    for (int i = 0; i < 4; i++) {
      opt[i] = csv.column(McPrompt.LETTERS.get(i));
      if (opt[i] < 0) {
        throw new IOException(
            csv.file()
                + ": no '"
                + McPrompt.LETTERS.get(i)
                + "' column (header "
                + csv.header()
                + ")");
      }
    }
    int a = csv.column(b.answerColumn());
    if (a < 0 && needAnswer) {
      throw new IOException(
          csv.file() + ": no '" + b.answerColumn() + "' column, which few-shot examples need");
    }
    List<McPrompt.Example> out = new ArrayList<>();
    for (int r = 0; r < csv.rows(); r++) {
      String answer = "NA";
      if (a >= 0) {
        answer = csv.cell(r, a);
        if (!McPrompt.LETTERS.contains(answer)) {
          throw new IOException(
              csv.file()
                  + " line "
                  + csv.line(r)
                  + " (row "
                  + r
                  + "): answer '"
                  + answer
                  + "' is not one of A, B, C, D");
        }
      }
      List<String> options = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        options.add(csv.cell(r, opt[i]));
      }
      out.add(new McPrompt.Example(r, csv.line(r), csv.cell(r, q), options, answer));
    }
    return out;
  }
}
