package dev.danlu.bench;

import dev.danlu.data.sft.SftExampleBuilder;
import dev.danlu.data.sft.SftExamples;
import dev.danlu.data.sft.SftRecordReader;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.train.comm.LocalCommunicator;
import dev.danlu.train.data.BatchPlan;
import dev.danlu.train.data.LengthGrouping;
import dev.danlu.train.data.SftBatches;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.optim.AdamW;
import dev.danlu.train.optim.DynamicLossScaler;
import dev.danlu.train.optim.LrSchedule;
import dev.danlu.train.recipe.Objective;
import dev.danlu.train.recipe.SftRecipe;
import dev.danlu.train.recipe.StepRunner;
import dev.danlu.train.zero.Zero2Optimizer;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * SFT step throughput on real instruction lengths: the alpaca-zh records of ../shared built into
 * examples exactly as prep-sft builds them (Chinese-LLaMA-2 tokenizer, max_seq_length 512), then
 * the training loop's step ({@link StepRunner}) on a small LLaMA, micro-batches padded to their
 * longest row rounded up to a multiple of 64 (as SftRecipe pads them), in the plain global order,
 * with group_by_length, and packed ({@code packing}: rows of 512 tokens, several examples each).
 * Prints the padding fraction of each over the whole epoch, and the real (unpadded) tokens per
 * second of each — plain and grouped over the first megabatch (the same examples in both orders),
 * packing over as many steps as carry about those examples — and their ratio to the plain order,
 * measured in the same run.
 *
 * <pre>bench/run.sh SftStepBench [per_device_batch dim layers]  (defaults 8 256 2)</pre>
 */
public final class SftStepBench {
  /** Micro-batch lengths round up to this, as SftRecipe rounds them: shapes recur. */
  private static final int MULTIPLE = SftRecipe.PAD_TO_MULTIPLE_OF;

  private SftStepBench() {}

  public static void main(String[] args) throws Exception {
    int batch = args.length > 0 ? Integer.parseInt(args[0]) : 8;
    int dim = args.length > 1 ? Integer.parseInt(args[1]) : 256;
    int layers = args.length > 2 ? Integer.parseInt(args[2]) : 2;
    Path records = BenchDirs.shared().resolve("fixtures/sft/alpaca-zh-2000.json");
    Path tokFile = BenchDirs.shared().resolve("fixtures/tokenizers/chinese-llama2-tokenizer.model");
    List<SftExamples.Example> examples = new ArrayList<>();
    int vocab;
    try (TextTokenizer tok = TextTokenizer.load(tokFile);
        InputStream in = Files.newInputStream(records);
        SftRecordReader reader = SftRecordReader.open(in, records.toString())) {
      vocab = tok.vocabSize();
      SftExampleBuilder builder = new SftExampleBuilder(tok, 512);
      for (SftRecordReader.Item it = reader.next(); it != null; it = reader.next()) {
        if (!it.bad()) {
          SftExampleBuilder.Built b = builder.build(it.record());
          if (!b.fullyMasked()) {
            examples.add(b.example());
          }
        }
      }
    }
    SftExamples train = memory(examples);
    BatchPlan plan = new BatchPlan(42, examples.size(), batch, 1, 1);
    LengthGrouping grouping = new LengthGrouping(plan, row -> examples.get((int) row).length());
    long totalTokens = 0;
    for (SftExamples.Example e : examples) {
      totalTokens += e.length();
    }
    // packing: rows of 512 tokens; a per-device batch of as many packed rows as carry about the
    // real tokens of `batch` examples, so every mode trains on about the same tokens per step
    SftBatches packedData =
        new SftBatches(train, memory(List.of()), 32000, 512, MULTIPLE, true, 1, "bench");
    int packedBatch =
        (int) Math.max(1, Math.round((double) batch * packedData.trainRows() / examples.size()));
    BatchPlan packedPlan = new BatchPlan(42, packedData.trainRows(), packedBatch, 1, 1);
    System.out.printf(
        Locale.ROOT,
        "alpaca-zh-2000: %d examples (%d tokens), per-device batch %d, %d steps per epoch;"
            + " packed: %d rows of 512, per-device batch %d, %d steps per epoch%n",
        examples.size(),
        totalTokens,
        batch,
        plan.stepsPerEpoch(),
        packedData.trainRows(),
        packedBatch,
        packedPlan.stepsPerEpoch());
    String[] names = {"plain order", "group_by_length", "packing"};
    double[] pad = new double[3];
    for (int mode = 0; mode < 3; mode++) {
      long real = 0;
      long padded = 0;
      BatchPlan pl = mode == 2 ? packedPlan : plan;
      for (long s = 0; s < pl.stepsPerEpoch(); s++) {
        long[] rows = mode == 1 ? grouping.rowsFor(s, 0, 0) : pl.rowsFor(s, 0, 0);
        int max = 0;
        for (long r : rows) {
          int len = mode == 2 ? packedData.length(r) : examples.get((int) r).length();
          real += len;
          max = Math.max(max, len);
        }
        padded += (long) Math.min(512, (max + MULTIPLE - 1) / MULTIPLE * MULTIPLE) * rows.length;
      }
      pad[mode] = 1 - (double) real / padded;
    }
    System.out.printf(
        Locale.ROOT,
        "padding fraction over the epoch: plain order %.1f%%, group_by_length %.1f%%,"
            + " packing %.1f%%%n",
        100 * pad[0],
        100 * pad[1],
        100 * pad[2]);

    LlamaConfig c =
        new LlamaConfig(
            dim,
            dim * 8 / 3 / 16 * 16,
            layers,
            dim / 64,
            dim / 64,
            vocab,
            1e-5,
            1e4,
            null,
            false,
            512);
    LlamaWeights w = LlamaWeights.random(c, 1, DataType.FLOAT);
    LoraAdapter ad =
        LoraAdapter.init(new LoraConfig(8, 16, 0.05, LoraConfig.allTargets(), false, false, 1), w);
    StepRunner runner =
        new StepRunner(
            LocalCommunicator.group(1).get(0),
            c,
            w,
            ad,
            Objective.CAUSAL_LM,
            new Zero2Optimizer.Config(
                AdamW.huggingFaceDefaults(), 1e-4, 0.0, 1.0, 16 << 20, LrSchedule.constant()),
            DynamicLossScaler.disabled(),
            false,
            false);
    // packed steps covering about the examples of the first megabatch
    long packedSteps =
        Math.max(
            1,
            LengthGrouping.MEGABATCH
                * (long) batch
                / Math.max(1, examples.size() / packedData.trainRows())
                / packedBatch);
    try (SftBatches data =
        new SftBatches(train, memory(List.of()), 32000, 512, MULTIPLE, 1, "bench")) {
      // plain and grouped over the first megabatch: the same examples, in the plain order and
      // sorted by length; packing over its first steps; interleaved step by step so all three see
      // the same machine noise
      long[] nanos = new long[3];
      long[] real = new long[3];
      long[] steps = new long[3];
      for (long s = -1; s < Math.max(LengthGrouping.MEGABATCH, packedSteps); s++) {
        for (int mode = 0; mode < 3; mode++) {
          if (s >= (mode == 2 ? packedSteps : LengthGrouping.MEGABATCH)) {
            continue;
          }
          long step = Math.max(s, 0); // step -1: a warm-up pass over step 0
          long[] rows =
              mode == 1
                  ? grouping.rowsFor(step, 0, 0)
                  : (mode == 2 ? packedPlan : plan).rowsFor(step, 0, 0);
          Batch b = mode == 2 ? packedData.trainBatch(rows, step) : data.trainBatch(rows, step);
          long t0 = System.nanoTime();
          runner.step(List.of(b), 1.0);
          if (s >= 0) {
            nanos[mode] += System.nanoTime() - t0;
            steps[mode]++;
            for (int i = 0; i < b.attentionMask().length; i++) {
              real[mode] += b.attentionMask()[i];
            }
          }
        }
      }
      System.out.printf(
          Locale.ROOT,
          "model dim %d, %d layers, vocab %d, LoRA r=8 (plain and group_by_length: the same %d"
              + " examples)%n",
          dim,
          layers,
          vocab,
          LengthGrouping.MEGABATCH * batch);
      double plain = real[0] / (nanos[0] / 1e9);
      for (int mode = 0; mode < 3; mode++) {
        double rate = real[mode] / (nanos[mode] / 1e9);
        System.out.printf(
            Locale.ROOT,
            "  %-16s padding %5.1f%%  %3d steps, %7d real tokens: %6.0f real tokens/s (%.2fx)%n",
            names[mode],
            100 * pad[mode],
            steps[mode],
            real[mode],
            rate,
            rate / plain);
      }
    } finally {
      packedData.close();
    }
  }

  private static SftExamples memory(List<SftExamples.Example> rows) {
    return new SftExamples() {
      @Override
      public long rows() {
        return rows.size();
      }

      @Override
      public Example read(long row) {
        return rows.get((int) row);
      }

      @Override
      public void close() {}
    };
  }
}
