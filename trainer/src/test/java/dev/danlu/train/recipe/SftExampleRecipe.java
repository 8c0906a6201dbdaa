package dev.danlu.train.recipe;

import dev.danlu.data.sft.SftExamples;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.data.SftBatches;
import dev.danlu.train.data.TrainData;
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
 * (prompt masked with -100) through the SFT batching ({@link SftBatches}: right padding per
 * micro-batch) and reuses causal-LM cross-entropy.
 */
public final class SftExampleRecipe implements Recipe {
  static final int PAD = 0;
  static final int EOS = 2;

  @Override
  public String stage() {
    return "sft-example";
  }

  @Override
  public TrainLoop.Result run(TrainContext ctx, PrintStream log) throws IOException {
    TrainConfig cfg = ctx.config();
    ModelSetup model = ModelSetup.load(cfg, 40);
    int vocab = model.config().vocabSize();
    try (TrainData data =
        new SftBatches(
            new Examples(cfg.seed(), 0, 24, vocab),
            new Examples(cfg.seed(), 24, 4, vocab),
            PAD,
            cfg.maxSeqLength(),
            1,
            1,
            "00".repeat(32))) {
      return new TrainLoop(log).run(ctx, model, data, Objective.CAUSAL_LM, "sft_lora_model");
    }
  }

  /**
   * In-memory examples {@code <prompt> <answer> </s>}: a random prompt of 3–6 tokens whose answer
   * is a fixed function of it (so there is something to learn), labels -100 over the prompt; rows
   * {@code first .. first + count - 1} of one seeded sequence.
   */
  static final class Examples implements SftExamples {
    final List<Example> examples = new ArrayList<>();

    Examples(long seed, int first, int count, int vocab) {
      SplittableRandom r = new SplittableRandom(seed);
      for (int e = 0; e < first + count; e++) {
        int prompt = 3 + r.nextInt(4);
        int[] in = new int[prompt + 3];
        int[] lab = new int[prompt + 3];
        Arrays.fill(lab, IGNORE_INDEX);
        for (int n = 0; n < prompt; n++) {
          in[n] = 3 + r.nextInt(vocab - 3);
        }
        int[] answer = {3 + (in[0] * 7) % (vocab - 3), 3 + (in[0] * 11) % (vocab - 3), EOS};
        for (int a = 0; a < answer.length; a++) {
          in[prompt + a] = answer[a];
          lab[prompt + a] = answer[a];
        }
        if (e >= first) {
          examples.add(new Example(in, lab));
        }
      }
    }

    @Override
    public long rows() {
      return examples.size();
    }

    @Override
    public Example read(long row) {
      return examples.get((int) row);
    }

    @Override
    public void close() {}
  }
}
