package dev.danlu.bench;

import dev.danlu.data.sft.Alpaca2Template;
import dev.danlu.data.sft.SftExampleBuilder;
import dev.danlu.data.sft.SftRecord;
import dev.danlu.data.sft.SftRecordReader;
import dev.danlu.data.tokenizer.TextTokenizer;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * prep-sft's per-record work against {@code spm_encode} in the same run: the alpaca-zh records of
 * ../shared, {@code --copies} times over, built into examples exactly as a prep-sft task builds
 * them (Alpaca-2 prompt with BOS, output + EOS, cut to max_seq_length) on one thread, vs spm_encode
 * (C++, one process) encoding the same prompt and output texts as lines. Prints tokens/s of both
 * and the ratio; the best of {@code --repeats} runs each after a warm-up. The Spark job around it
 * (files, shards, manifest) is what {@code PrepBench} measures for prep.
 *
 * <pre>bench/run.sh PrepSftBench [--copies 10] [--repeats 3]</pre>
 */
public final class PrepSftBench {
  private PrepSftBench() {}

  public static void main(String[] args) throws Exception {
    int copies = 10;
    int repeats = 3;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--copies" -> copies = Integer.parseInt(args[++i]);
        case "--repeats" -> repeats = Integer.parseInt(args[++i]);
        default ->
            throw new IllegalArgumentException(
                "unknown option " + args[i] + "; usage: PrepSftBench [--copies N] [--repeats N]");
      }
    }
    Path records = BenchDirs.shared().resolve("fixtures/sft/alpaca-zh-2000.json");
    Path model = BenchDirs.shared().resolve("fixtures/tokenizers/chinese-llama2-tokenizer.model");
    List<SftRecord> all = new ArrayList<>();
    try (InputStream in = Files.newInputStream(records);
        SftRecordReader reader = SftRecordReader.open(in, records.toString())) {
      for (SftRecordReader.Item it = reader.next(); it != null; it = reader.next()) {
        if (!it.bad()) {
          all.add(it.record());
        }
      }
    }
    List<SftRecord> work = new ArrayList<>();
    for (int c = 0; c < copies; c++) {
      work.addAll(all);
    }
    // spm_encode's input: each record's prompt text and output text, one line each (newlines
    // inside a field become spaces: spm_encode reads lines)
    StringBuilder text = new StringBuilder();
    for (SftRecord r : work) {
      String instruction = Alpaca2Template.instruction(r.instruction(), r.input());
      text.append(Alpaca2Template.prompt(instruction).replace('\n', ' ')).append('\n');
      text.append(r.output().replace('\n', ' ')).append('\n');
    }
    Path input = Files.createTempFile("danlu-prep-sft-bench", ".txt");
    try (TextTokenizer tok = TextTokenizer.load(model)) {
      Files.writeString(input, text, StandardCharsets.UTF_8);
      SftExampleBuilder builder = new SftExampleBuilder(tok, 512);
      long tokens = 0;
      double ours = Double.MAX_VALUE;
      for (int rep = -1; rep < repeats; rep++) {
        long t0 = System.nanoTime();
        long n = 0;
        for (SftRecord r : work) {
          SftExampleBuilder.Built b = builder.build(r);
          n += b.promptTokens() + b.targetTokens();
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        if (rep >= 0) {
          ours = Math.min(ours, secs);
          tokens = n;
        }
      }
      double spm = Double.MAX_VALUE;
      for (int rep = -1; rep < repeats; rep++) {
        double[] wallCpu = TokenizerBench.spmEncode(model, input);
        if (rep >= 0) {
          spm = Math.min(spm, wallCpu[0]);
        }
      }
      System.out.printf(
          Locale.ROOT,
          "alpaca-zh x %d: %d records, %.1f MB of prompt+output text, %d tokens (before the"
              + " max_seq_length cut)%n",
          copies,
          work.size(),
          text.length() * 3 / 1e6,
          tokens);
      System.out.printf(
          Locale.ROOT,
          "prep-sft example builder, 1 thread: %.0f tokens/s; spm_encode (C++): %.0f tokens/s;"
              + " ratio %.2fx%n",
          tokens / ours,
          tokens / spm,
          spm / ours);
    } finally {
      Files.deleteIfExists(input);
    }
  }
}
