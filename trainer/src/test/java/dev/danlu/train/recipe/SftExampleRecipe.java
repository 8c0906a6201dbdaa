package dev.danlu.train.recipe;

import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.data.TrainData;
import dev.danlu.train.model.Batch;
import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The shape of an instruction fine-tuning recipe, written against the loop's seams only, to show
 * that a recipe adds no code to the generic classes: registered in this test tree's {@code
 * META-INF/services} as {@code stage: sft-example}, it supplies in-memory instruction examples
 * (prompt masked with -100, right padding) and reuses causal-LM cross-entropy. The real SFT recipe
 * (Alpaca-2 template, tokenizer, data on Spark) replaces it.
 */
public final class SftExampleRecipe implements Recipe {
  static final int SEQ = 12;
  static final int PAD = 0;
  static final int EOS = 2;
  static final int IGNORE = -100;

  @Override
  public String stage() {
    return "sft-example";
  }

  @Override
  public TrainLoop.Result run(TrainContext ctx, PrintStream log) throws IOException {
    TrainConfig cfg = ctx.config();
    ModelSetup model = ModelSetup.load(cfg, 40);
    try (Examples data = new Examples(cfg.seed(), 24, 4, model.config().vocabSize())) {
      return new TrainLoop(log).run(ctx, model, data, Objective.CAUSAL_LM, "sft_lora_model");
    }
  }

  /**
   * Examples {@code <prompt> <answer> </s>}: a random prompt of 3–6 tokens whose answer is a fixed
   * function of it (so there is something to learn), labels -100 over the prompt and the padding.
   */
  static final class Examples implements TrainData {
    final List<int[]> ids = new ArrayList<>();
    final List<int[]> labels = new ArrayList<>();
    private final int train;

    Examples(long seed, int train, int validation, int vocab) {
      this.train = train;
      SplittableRandom r = new SplittableRandom(seed);
      for (int e = 0; e < train + validation; e++) {
        int[] in = new int[SEQ];
        int[] lab = new int[SEQ];
        Arrays.fill(in, PAD);
        Arrays.fill(lab, IGNORE);
        int prompt = 3 + r.nextInt(4);
        int n = 0;
        int first = 0;
        for (; n < prompt; n++) {
          in[n] = 3 + r.nextInt(vocab - 3);
          first = n == 0 ? in[n] : first;
        }
        int[] answer = {3 + (first * 7) % (vocab - 3), 3 + (first * 11) % (vocab - 3), EOS};
        for (int a : answer) {
          in[n] = a;
          lab[n] = a;
          n++;
        }
        ids.add(in);
        labels.add(lab);
      }
    }

    @Override
    public long trainRows() {
      return train;
    }

    @Override
    public long validationRows() {
      return ids.size() - train;
    }

    @Override
    public Batch trainBatch(long[] rows, long step) {
      return batch(rows, 0, step, true);
    }

    @Override
    public Batch validationBatch(long[] rows) {
      return batch(rows, train, 0, false);
    }

    private Batch batch(long[] rows, int offset, long step, boolean isTrain) {
      int[] in = new int[rows.length * SEQ];
      int[] lab = new int[rows.length * SEQ];
      int[] mask = new int[rows.length * SEQ];
      long[] sampleIds = new long[rows.length];
      for (int b = 0; b < rows.length; b++) {
        int e = (int) rows[b] + offset;
        System.arraycopy(ids.get(e), 0, in, b * SEQ, SEQ);
        System.arraycopy(labels.get(e), 0, lab, b * SEQ, SEQ);
        for (int t = 0; t < SEQ; t++) {
          // attend to everything up to the answer's end; padding is masked
          mask[b * SEQ + t] = t == 0 || in[b * SEQ + t] != PAD ? 1 : 0;
        }
        sampleIds[b] = e;
      }
      return new Batch(rows.length, SEQ, in, mask, lab, sampleIds, step, isTrain);
    }

    @Override
    public long version() {
      return 1;
    }

    @Override
    public String sha256() {
      return "00".repeat(32);
    }

    @Override
    public String describe() {
      return trainRows() + " train / " + validationRows() + " validation examples of " + SEQ;
    }

    @Override
    public void close() {}
  }
}
