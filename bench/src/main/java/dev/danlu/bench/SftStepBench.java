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
 * longest row, in the plain global order and with group_by_length. Prints the padding fraction of
 * each order over the whole epoch, and the real (unpadded) tokens per second of each over the first
 * megabatch — the same examples in both orders — and their ratio (the reference: the plain order,
 * measured in the same run).
 *
 * <pre>bench/run.sh SftStepBench [per_device_batch dim layers]  (defaults 8 256 2)</pre>
 */
public final class SftStepBench {
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
    System.out.printf(
        Locale.ROOT,
        "alpaca-zh-2000: %d examples, per-device batch %d, %d steps per epoch%n",
        examples.size(),
        batch,
        plan.stepsPerEpoch());
    double[] pad = new double[2];
    for (int mode = 0; mode < 2; mode++) {
      long real = 0;
      long padded = 0;
      for (long s = 0; s < plan.stepsPerEpoch(); s++) {
        long[] rows = mode == 0 ? plan.rowsFor(s, 0, 0) : grouping.rowsFor(s, 0, 0);
        int max = 0;
        for (long r : rows) {
          real += examples.get((int) r).length();
          max = Math.max(max, examples.get((int) r).length());
        }
        padded += (long) max * rows.length;
      }
      pad[mode] = 1 - (double) real / padded;
    }
    System.out.printf(
        Locale.ROOT,
        "padding fraction over the epoch: plain order %.1f%%, group_by_length %.1f%%%n",
        100 * pad[0],
        100 * pad[1]);

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
    try (SftBatches data = new SftBatches(train, memory(List.of()), 32000, 0, 1, 1, "bench")) {
      // both orders over the first megabatch: the same examples, in the plain order and sorted
      // by length; alternating step by step so both see the same machine noise
      long[] nanos = new long[2];
      long[] real = new long[2];
      for (long s = -1; s < LengthGrouping.MEGABATCH; s++) {
        for (int mode = 0; mode < 2; mode++) {
          long step = Math.max(s, 0); // step -1: a warm-up pass over step 0
          long[] rows = mode == 0 ? plan.rowsFor(step, 0, 0) : grouping.rowsFor(step, 0, 0);
          Batch b = data.trainBatch(rows, step);
          long t0 = System.nanoTime();
          runner.step(List.of(b), 1.0);
          if (s >= 0) {
            nanos[mode] += System.nanoTime() - t0;
            for (long r : rows) {
              real[mode] += examples.get((int) r).length();
            }
          }
        }
      }
      double plain = real[0] / (nanos[0] / 1e9);
      double grouped = real[1] / (nanos[1] / 1e9);
      System.out.printf(
          Locale.ROOT,
          "model dim %d, %d layers, vocab %d, LoRA r=8, %d steps of %d examples (the same %d"
              + " examples in both orders): real tokens/s plain %.0f, group_by_length %.0f;"
              + " ratio %.2fx%n",
          dim,
          layers,
          vocab,
          LengthGrouping.MEGABATCH,
          batch,
          real[0] == real[1] ? LengthGrouping.MEGABATCH * batch : -1,
          plain,
          grouped,
          grouped / plain);
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
