package dev.danlu.train.eval;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What differs between the two multiple-choice benchmarks as Chinese-LLaMA-Alpaca-2's evaluators
 * run them ({@code scripts/ceval/} and {@code scripts/cmmlu/}): CSV column names, the system prompt
 * of the Alpaca-2 template, the subject name put into the prompt, where the dev CSV is, and how
 * subjects group into categories. Everything else (prompt layout, scoring) is shared in {@link
 * McPrompt} and {@link ChoiceScorer}.
 */
public enum McBenchmark {
  /**
   * C-Eval: {@code id,question,A,B,C,D,answer[,explanation]}; files {@code <subject>_val.csv} /
   * {@code _test.csv}, dev {@code <subject>_dev.csv}; the prompt names the subject by its file name
   * without the split suffix ({@code computer_network}, English with underscores, as eval.py passes
   * it); the system prompt is the bilingual default. Groups from subject_mapping.json, plus "Hard"
   * (the C-Eval paper's eight hardest STEM subjects, which the reference script does not report).
   */
  CEVAL(
      "ceval",
      "question",
      "answer",
      "You are a helpful assistant. 你是一个乐于助人的助手。",
      List.of("STEM", "Social Science", "Humanities", "Other", "Hard")),

  /**
   * CMMLU: {@code ,Question,A,B,C,D,Answer}; test and dev files share the subject's file name; the
   * prompt names the subject by its file stem ({@code agronomy} — the script has the Chinese names
   * but does not use them); the system prompt is Chinese only. A subject tagged "china specific"
   * counts only in "China specific", not in its other category (the script's mapping keeps the last
   * category it assigns).
   */
  CMMLU(
      "cmmlu",
      "Question",
      "Answer",
      "你是一个乐于助人的助手。",
      List.of("STEM", "Humanities", "Social Science", "Other", "China specific"));

  /** The C-Eval Hard subjects (C-Eval paper / README). */
  static final List<String> CEVAL_HARD =
      List.of(
          "advanced_mathematics",
          "discrete_mathematics",
          "probability_and_statistics",
          "college_chemistry",
          "college_physics",
          "high_school_mathematics",
          "high_school_chemistry",
          "high_school_physics");

  /** categories.py's categories: group -> subcategories, in the script's order. */
  private static final Map<String, List<String>> CMMLU_GROUPS = new LinkedHashMap<>();

  static {
    CMMLU_GROUPS.put(
        "STEM",
        List.of(
            "physics",
            "chemistry",
            "biology",
            "computer science",
            "math",
            "engineering",
            "statistics"));
    CMMLU_GROUPS.put(
        "Humanities", List.of("history", "philosophy", "law", "arts", "literature", "global"));
    CMMLU_GROUPS.put(
        "Social Science",
        List.of(
            "linguistics",
            "business",
            "politics",
            "culture",
            "economics",
            "geography",
            "psychology",
            "education",
            "sociology"));
    CMMLU_GROUPS.put("Other", List.of("other"));
    CMMLU_GROUPS.put("China specific", List.of("china specific"));
  }

  private final String id;
  private final String questionColumn;
  private final String answerColumn;
  private final String systemPrompt;
  private final List<String> categories;
  private Map<String, String> groups;

  McBenchmark(
      String id,
      String questionColumn,
      String answerColumn,
      String systemPrompt,
      List<String> categories) {
    this.id = id;
    this.questionColumn = questionColumn;
    this.answerColumn = answerColumn;
    this.systemPrompt = systemPrompt;
    this.categories = categories;
  }

  public String id() {
    return id;
  }

  public String questionColumn() {
    return questionColumn;
  }

  public String answerColumn() {
    return answerColumn;
  }

  /** The system prompt of the Alpaca-2 template in this benchmark's script. */
  public String systemPrompt() {
    return systemPrompt;
  }

  /** Category names in the order the script reports them. */
  public List<String> categories() {
    return categories;
  }

  /** {@code --benchmark} value → benchmark. */
  public static McBenchmark parse(String s) {
    for (McBenchmark b : values()) {
      if (b.id.equals(s)) {
        return b;
      }
    }
    throw new IllegalArgumentException("unknown benchmark '" + s + "' (ceval or cmmlu)");
  }

  /** The subject name the script puts into the prompt, from a CSV file stem. */
  public String subjectName(String stem) {
    if (this == CEVAL) {
      for (String suffix : List.of("_val", "_test", "_dev")) {
        if (stem.endsWith(suffix)) {
          return stem.substring(0, stem.length() - suffix.length());
        }
      }
    }
    return stem;
  }

  /** The dev CSV of a subject in {@code devDir}. */
  public Path devFile(Path devDir, String stem) {
    String name = this == CEVAL ? subjectName(stem) + "_dev.csv" : stem + ".csv";
    return devDir.resolve(name);
  }

  /**
   * The categories a subject counts in (C-Eval: its group, and "Hard" for the hard ones; CMMLU: one
   * group by the script's rule); empty for a subject the benchmark does not list.
   */
  public List<String> categoriesOf(String subject) {
    String g = groups().get(subject);
    if (g == null) {
      return List.of();
    }
    if (this == CEVAL && CEVAL_HARD.contains(subject)) {
      return List.of(g, "Hard");
    }
    return List.of(g);
  }

  private synchronized Map<String, String> groups() {
    if (groups == null) {
      groups = loadGroups();
    }
    return groups;
  }

  private Map<String, String> loadGroups() {
    String res = id + "-subjects.tsv";
    Map<String, String> m = new LinkedHashMap<>();
    try (InputStream in = McBenchmark.class.getResourceAsStream(res)) {
      if (in == null) {
        throw new IllegalStateException("missing resource " + res);
      }
      BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
      for (String line = r.readLine(); line != null; line = r.readLine()) {
        if (line.isBlank() || line.startsWith("#")) {
          continue;
        }
        String[] f = line.split("\t");
        if (this == CEVAL) {
          m.put(f[0], f[3]);
        } else {
          // eval.py: for each category in order, every subject with a matching subcategory is
          // (re)assigned to it, so the last matching category wins
          String group = null;
          List<String> subcats = List.of(f[2].split(","));
          for (Map.Entry<String, List<String>> e : CMMLU_GROUPS.entrySet()) {
            for (String sc : subcats) {
              if (e.getValue().contains(sc)) {
                group = e.getKey();
              }
            }
          }
          m.put(f[0], group);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return m;
  }
}
