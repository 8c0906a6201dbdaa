package dev.danlu.jobs.vocab;

import dev.danlu.data.cli.CliSupport;
import dev.danlu.data.vocab.BpeSpec;
import dev.danlu.data.vocab.MergeCheck;
import dev.danlu.data.vocab.VocabMerge;
import dev.danlu.jobs.SparkSessions;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code danlu vocab train|merge}: vocabulary extension. {@code train} builds a SentencePiece BPE
 * model from a corpus on Spark (spm_train's semantics); {@code merge} appends its new pieces to a
 * base model as Chinese-LLaMA-Alpaca's merge_tokenizers.py does. Exit codes: 0 done, 1 refused or
 * failed (message on stderr), 2 usage error.
 */
@Command(
    name = "vocab",
    description = {
      "Vocabulary extension: train a BPE tokenizer on Spark, merge it into a base.",
      ""
    })
public final class VocabCli {
  private VocabCli() {}

  /** {@code vocab} with its two subcommands, printing to {@code out}. */
  public static CommandLine commandLine(PrintStream out) {
    CommandLine cl = new CommandLine(new VocabCli());
    cl.addSubcommand(new Train(out));
    cl.addSubcommand(new Merge(out));
    return cl;
  }

  private static Path existing(String flag, String p) throws NoSuchFileException {
    Path path = Path.of(p);
    if (!Files.isRegularFile(path)) {
      throw new NoSuchFileException(flag + " " + p);
    }
    return path;
  }

  private static void writeAtomically(Path out, byte[] bytes) throws IOException {
    Path abs = out.toAbsolutePath();
    if (abs.getParent() != null) {
      Files.createDirectories(abs.getParent());
    }
    Path tmp = abs.resolveSibling(abs.getFileName() + ".tmp");
    Files.write(tmp, bytes);
    Files.move(tmp, abs, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
  }

  /** {@code danlu vocab merge}. */
  @Command(
      name = "merge",
      sortOptions = false,
      description = {
        "Append the pieces of --add that --base lacks (score 0, normal type) to --base.",
        "Base pieces, ids and every other field of --base are kept.",
        ""
      })
  static final class Merge implements Callable<Integer> {
    @Option(
        names = "--base",
        required = true,
        paramLabel = "<tokenizer.model>",
        description = "The base SentencePiece model (e.g. LLaMA-2's).")
    String base;

    @Option(
        names = "--add",
        required = true,
        paramLabel = "<zh.model>",
        description = "The model whose new pieces are appended (e.g. from vocab train).")
    String add;

    @Option(
        names = "--output",
        required = true,
        paramLabel = "<merged.model>",
        description = "Where to write the merged model.")
    String output;

    @Option(
        names = "--check",
        description =
            "Re-read the output and check it against the reference merge's layout and encoding.")
    boolean check;

    @Option(
        names = "--check-text",
        paramLabel = "<file>",
        description = "Lines to encode for --check (default: a built-in Chinese/English sample).")
    String checkText;

    private final PrintStream out;

    Merge(PrintStream out) {
      this.out = out;
    }

    @Override
    public Integer call() throws IOException {
      Path basePath = existing("--base", base);
      Path addPath = existing("--add", add);
      VocabMerge.Result r =
          VocabMerge.merge(
              Files.readAllBytes(basePath),
              "--base " + base,
              Files.readAllBytes(addPath),
              "--add " + add);
      writeAtomically(Path.of(output), r.bytes());
      out.printf(
          "vocab merge: %d base pieces + %d added = %d pieces -> %s%n",
          r.baseSize(), r.added().size(), r.mergedSize(), output);
      if (check) {
        List<String> sample =
            checkText == null
                ? MergeCheck.SAMPLE
                : Files.readAllLines(existing("--check-text", checkText), StandardCharsets.UTF_8);
        MergeCheck.Report rep = MergeCheck.check(basePath, Path.of(output), r, sample);
        out.printf(
            "vocab merge: check passed (%d lines): tokens/char %.3f with --base, %.3f merged%n",
            sample.size(), rep.baseTokensPerChar(), rep.mergedTokensPerChar());
      }
      return CliSupport.OK;
    }
  }

  /** {@code danlu vocab train}. */
  @Command(
      name = "train",
      sortOptions = false,
      description = {
        "Train a SentencePiece BPE model on Spark, as spm_train --model_type=bpe does.",
        ""
      })
  static final class Train implements Callable<Integer> {
    @Option(
        names = "--input",
        required = true,
        split = ",",
        paramLabel = "<dir|file>",
        description = "Corpus files, or directories searched recursively for *.txt (comma list).")
    List<String> input;

    @Option(
        names = "--vocab-size",
        required = true,
        paramLabel = "<n>",
        converter = CliSupport.PositiveInt.class,
        description = "Pieces in the model, <unk> <s> </s> included.")
    int vocabSize;

    @Option(
        names = "--output",
        required = true,
        paramLabel = "<zh.model>",
        description = "Where to write the model.")
    String output;

    @Option(
        names = "--master",
        paramLabel = "<url>",
        description = "Spark master (default: spark-submit's, else local[*]).")
    String master;

    @Option(
        names = "--tasks",
        paramLabel = "<n>",
        converter = CliSupport.PositiveInt.class,
        description = "Spark tasks reading the corpus (default: the default parallelism).")
    Integer tasks;

    @Option(
        names = "--character-coverage",
        paramLabel = "<f>",
        converter = CliSupport.PositiveNumber.class,
        description = "Fraction of characters the alphabet covers (default 0.9995).")
    double characterCoverage = 0.9995;

    @Option(
        names = "--max-sentence-length",
        paramLabel = "<bytes>",
        converter = CliSupport.PositiveInt.class,
        description = "Longer lines are skipped (default 4192, as spm_train).")
    int maxSentenceLength = 4192;

    @Option(
        names = "--max-piece-length",
        paramLabel = "<chars>",
        converter = CliSupport.PositiveInt.class,
        description = "Longest piece (default 16).")
    int maxPieceLength = 16;

    @Option(
        names = "--input-sentence-size",
        paramLabel = "<n>",
        converter = CliSupport.PositiveLong.class,
        description = "Train on this many lines, sampled by --seed (default: all).")
    long inputSentenceSize;

    @Option(
        names = "--seed",
        paramLabel = "<n>",
        description = "Seed of the line sample (default 0).")
    long seed;

    @Option(
        names = "--normalization-rule-name",
        paramLabel = "<rule>",
        description =
            "nmt_nfkc (default, as spm_train), nfkc or identity (the rule of LLaMA's tokenizer)."
                + " The model stores the rule's charsmap; the corpus is normalized with it.")
    String normalizationRuleName = "nmt_nfkc";

    @Option(
        names = "--add-dummy-prefix",
        arity = "1",
        paramLabel = "<bool>",
        description = "Prepend U+2581 to every line (default true).")
    boolean addDummyPrefix = true;

    @Option(
        names = "--remove-extra-whitespaces",
        arity = "1",
        paramLabel = "<bool>",
        description = "Drop leading, trailing and repeated spaces (default true).")
    boolean removeExtraWhitespaces = true;

    @Option(names = "--byte-fallback", description = "Add the 256 byte pieces <0x00>..<0xFF>.")
    boolean byteFallback;

    @Option(names = "--split-digits", description = "Every digit is a piece of its own.")
    boolean splitDigits;

    @Option(
        names = "--user-defined-symbols",
        split = ",",
        paramLabel = "<s>",
        description = "Pieces added whole after </s> (comma list).")
    List<String> userDefinedSymbols = new ArrayList<>();

    private final PrintStream out;

    Train(PrintStream out) {
      this.out = out;
    }

    BpeSpec spec() {
      if (characterCoverage > 1) {
        throw new IllegalArgumentException(
            "--character-coverage must be in (0, 1], got " + characterCoverage);
      }
      return new BpeSpec(
          vocabSize,
          (float) characterCoverage,
          maxSentenceLength,
          maxPieceLength,
          true,
          true,
          splitDigits,
          byteFallback,
          userDefinedSymbols,
          addDummyPrefix,
          removeExtraWhitespaces,
          inputSentenceSize,
          seed,
          normalizationRuleName);
    }

    @Override
    public Integer call() throws IOException {
      BpeSpec spec = spec();
      SparkSession spark = SparkSessions.open("danlu vocab train", master);
      try {
        JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        long t0 = System.nanoTime();
        VocabTrainJob.Result r =
            VocabTrainJob.run(
                sc, input, spec, tasks != null ? tasks : sc.defaultParallelism(), out);
        writeAtomically(Path.of(output), r.model());
        out.printf(
            "vocab train: %d pieces (%d merged, alphabet %d, coverage %.5f) in %.1fs -> %s%n",
            vocabSize,
            r.stats().merges(),
            r.stats().alphabet(),
            r.stats().coverage(),
            (System.nanoTime() - t0) / 1e9,
            output);
        return CliSupport.OK;
      } finally {
        spark.stop();
      }
    }
  }
}
