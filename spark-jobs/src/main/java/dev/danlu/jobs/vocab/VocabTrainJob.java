package dev.danlu.jobs.vocab;

import dev.danlu.data.vocab.BpeSpec;
import dev.danlu.data.vocab.BpeTrainer;
import dev.danlu.data.vocab.Charsmap;
import dev.danlu.data.vocab.CorpusReader;
import dev.danlu.data.vocab.SpmModelWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.util.LongAccumulator;
import scala.Tuple2;

/**
 * {@code vocab train} on Spark: executors read the corpus files, normalize the lines as spm_train
 * does and count words (and, with --input-sentence-size, pick the sampled lines by their seeded
 * keys); the counts are summed by word across tasks, and the driver runs the BPE merges over the
 * word table ({@link BpeTrainer}, incremental: no corpus pass per merge). Sums and the sorted word
 * table do not depend on the task count, so 1, 2 or 4 tasks write the same file.
 */
public final class VocabTrainJob {
  private VocabTrainJob() {}

  /** A corpus file: its path and its name relative to the input root (the sampling key). */
  record CorpusFile(String path, String key) implements Serializable {}

  /** The lines of {@code file} that start at a byte offset in [start, end): one task's work. */
  record Range(CorpusFile file, long start, long end) implements Serializable {}

  /**
   * Splits files larger than {@code splitBytes} into byte ranges; with {@code splitBytes} 0, ranges
   * of total/(2 tasks) bytes, at least 1 MB and at most 64 MB. Word counts are sums over lines, so
   * any split gives the same model.
   */
  static List<Range> ranges(List<CorpusFile> files, int tasks, long splitBytes) throws IOException {
    long total = 0;
    long[] sizes = new long[files.size()];
    for (int i = 0; i < sizes.length; i++) {
      sizes[i] = Files.size(Path.of(files.get(i).path()));
      total += sizes[i];
    }
    long split =
        splitBytes > 0
            ? splitBytes
            : Math.max(1L << 20, Math.min(64L << 20, -Math.floorDiv(-total, 2L * tasks)));
    List<Range> out = new ArrayList<>();
    for (int i = 0; i < sizes.length; i++) {
      long start = 0;
      do {
        long end = sizes[i] - start > split ? start + split : Long.MAX_VALUE;
        out.add(new Range(files.get(i), start, end));
        start = end;
      } while (start < sizes[i]);
    }
    return out;
  }

  /** What was read and trained. */
  public record Result(
      CorpusReader.Counts counts, int files, BpeTrainer.Stats stats, byte[] model) {}

  /**
   * A counted corpus: normalized words and their counts, the line counters, and the charsmap the
   * words were normalized with (the model stores it).
   */
  public record Words(
      Map<String, Long> counts, CorpusReader.Counts lines, int files, byte[] charsmap) {}

  /** Expands inputs: files as they are, directories searched recursively for *.txt. */
  static List<CorpusFile> list(List<String> inputs) throws IOException {
    List<CorpusFile> out = new ArrayList<>();
    for (String in : inputs) {
      Path p = Path.of(in);
      if (Files.isRegularFile(p)) {
        out.add(new CorpusFile(p.toAbsolutePath().toString(), p.getFileName().toString()));
      } else if (Files.isDirectory(p)) {
        try (Stream<Path> s = Files.walk(p)) {
          s.filter(Files::isRegularFile)
              .filter(f -> f.getFileName().toString().endsWith(".txt"))
              .filter(f -> !f.getFileName().toString().startsWith("."))
              .sorted()
              .forEach(
                  f ->
                      out.add(
                          new CorpusFile(
                              f.toAbsolutePath().toString(), p.relativize(f).toString())));
        }
      } else {
        throw new IOException("--input " + in + ": no such file or directory");
      }
    }
    if (out.isEmpty()) {
      throw new IOException("--input " + String.join(",", inputs) + ": no *.txt files found");
    }
    return out;
  }

  /** Counts the corpus ({@link #count}) and trains on it ({@link #train}). */
  public static Result run(
      JavaSparkContext sc, List<String> inputs, BpeSpec spec, int tasks, PrintStream out)
      throws IOException {
    return train(count(sc, inputs, spec, tasks, out), spec);
  }

  /**
   * Trains the merges on the driver and serializes the model.
   *
   * @param spec the spec {@code words} were counted with, its vocabulary size possibly changed
   */
  public static Result train(Words words, BpeSpec spec) {
    BpeTrainer trainer = new BpeTrainer(spec);
    List<BpeTrainer.Piece> pieces = trainer.train(words.counts());
    return new Result(
        words.lines(),
        words.files(),
        trainer.stats(),
        SpmModelWriter.write(pieces, spec, words.charsmap()));
  }

  /** Reads, samples and normalizes the corpus on the executors; the word counts summed. */
  public static Words count(
      JavaSparkContext sc, List<String> inputs, BpeSpec spec, int tasks, PrintStream out)
      throws IOException {
    return count(sc, inputs, spec, tasks, 0, out);
  }

  /**
   * @param splitBytes files above this size are read in ranges of this many bytes (0: by size)
   */
  static Words count(
      JavaSparkContext sc,
      List<String> inputs,
      BpeSpec spec,
      int tasks,
      long splitBytes,
      PrintStream out)
      throws IOException {
    List<CorpusFile> files = list(inputs);
    List<Range> ranges = ranges(files, tasks, splitBytes);
    long tRules = System.nanoTime();
    byte[] charsmap = Charsmap.forRule(spec.normalization());
    if (charsmap.length > 0) {
      out.printf(
          "vocab train: normalization rule %s: %d-byte charsmap built in %.1fs%n",
          spec.normalization(), charsmap.length, (System.nanoTime() - tRules) / 1e9);
    }
    // Executors normalize with the driver's blob, the one the model stores.
    Broadcast<byte[]> rules = sc.broadcast(charsmap);
    int slices = Math.max(1, Math.min(tasks, ranges.size()));
    long threshold = Long.MAX_VALUE;
    try {
      if (spec.inputSentenceSize() > 0) {
        List<Long> keys =
            sc.parallelize(ranges, slices)
                .mapPartitions(it -> keysOf(it, spec, rules.value()))
                .takeOrdered((int) Math.min(Integer.MAX_VALUE - 8, spec.inputSentenceSize()));
        if (keys.size() == spec.inputSentenceSize()) {
          threshold = keys.get(keys.size() - 1);
        }
      }
      LongAccumulator lines = sc.sc().longAccumulator("lines");
      LongAccumulator tooLong = sc.sc().longAccumulator("too long");
      LongAccumulator reserved = sc.sc().longAccumulator("reserved");
      LongAccumulator kept = sc.sc().longAccumulator("kept");
      final long cut = threshold;
      Map<String, Long> words =
          sc.parallelize(ranges, slices)
              .mapPartitionsToPair(
                  it -> {
                    CorpusReader reader = new CorpusReader(spec, rules.value());
                    Map<String, Long> local = new HashMap<>();
                    CorpusReader.Counts c = new CorpusReader.Counts();
                    while (it.hasNext()) {
                      Range r = it.next();
                      c.add(
                          reader.read(
                              Path.of(r.file().path()),
                              r.file().key(),
                              r.start(),
                              r.end(),
                              (line, key) -> {
                                if (key <= cut) {
                                  reader.countWords(line, local);
                                }
                              }));
                    }
                    lines.add(c.lines);
                    tooLong.add(c.tooLong);
                    reserved.add(c.reserved);
                    kept.add(c.kept);
                    List<Tuple2<String, Long>> pairs = new ArrayList<>(local.size());
                    local.forEach((w, n) -> pairs.add(new Tuple2<>(w, n)));
                    return pairs.iterator();
                  })
              .reduceByKey(Long::sum, slices)
              .collectAsMap();
      CorpusReader.Counts counts = new CorpusReader.Counts();
      counts.lines = lines.value();
      counts.tooLong = tooLong.value();
      counts.reserved = reserved.value();
      counts.kept = kept.value();
      out.printf(
          "vocab train: %d files, %d lines (%d longer than --max-sentence-length %d skipped, %d with"
              + " U+2585 skipped), %d distinct words%n",
          files.size(),
          counts.lines,
          counts.tooLong,
          spec.maxSentenceLength(),
          counts.reserved,
          words.size());
      return new Words(new HashMap<>(words), counts, files.size(), charsmap); // off Scala's map
    } catch (Exception e) { // Spark rethrows executor failures as a checked SparkException
      if (e instanceof BpeTrainer.TrainingError t) {
        throw t;
      }
      if (e instanceof IOException io) {
        throw io;
      }
      throw userError(e);
    }
  }

  private static Iterator<Long> keysOf(Iterator<Range> it, BpeSpec spec, byte[] charsmap)
      throws IOException {
    CorpusReader reader = new CorpusReader(spec, charsmap);
    List<Long> keys = new ArrayList<>();
    while (it.hasNext()) {
      Range r = it.next();
      reader.keys(Path.of(r.file().path()), r.file().key(), r.start(), r.end(), keys::add);
    }
    return keys.iterator();
  }

  /** An executor's NotUtf8Exception (or other IOException) as the one line it carries. */
  private static IOException userError(Exception e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof CorpusReader.NotUtf8Exception n) {
        return n;
      }
    }
    String m = String.valueOf(e.getMessage());
    int i = m.indexOf("NotUtf8Exception: ");
    if (i >= 0) {
      String line = m.substring(i + "NotUtf8Exception: ".length()).split("\n", 2)[0];
      return new IOException(line, e);
    }
    return new IOException("the Spark job failed: " + m.split("\n", 2)[0], e);
  }
}
