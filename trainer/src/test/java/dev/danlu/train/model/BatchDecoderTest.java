package dev.danlu.train.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.data.tokenizer.TextTokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The continuous-batching decoder against the batch-1 {@link Generator}: sequences with different
 * prompt lengths join (block prefill) and leave at different steps, and every row's logits match
 * the same sequence decoded alone.
 *
 * <p>What may differ and why: a row's attention, norms and adds run the batch-1 code itself ({@link
 * Generator#attendRow}); only the gemms (over B rows instead of one) and the prefill (one block
 * gemm instead of token steps) may sum in another order. In float64 that is a relative rounding of
 * about K·2^-53 ≈ 1e-14 per dot product (K ≤ 40 here), amplified by at most a few orders of
 * magnitude through two layers, so 1e-9 of the logit scale is far above rounding and far below any
 * real mistake (a wrong position or cache row moves logits by O(0.1)). In float32 on the real
 * stories260K model the same argument gives K·2^-24 ≈ 1e-5 (K = 172) per product; the test allows
 * 1e-3 absolute on logits of magnitude ~10 and requires identical greedy tokens, with every step's
 * top-two margin above twice that tolerance, so the equality is implied, not luck.
 */
class BatchDecoderTest {
  /** One sequence: its prompt, its batch-1 reference and its batched copy. */
  private static final class Seq {
    final int[] prompt;
    final int joinStep;
    final int newTokens;
    final Generator alone;
    final Generator batched;
    final List<Integer> out = new ArrayList<>();
    float[] aloneLogits;
    float[] batchedLogits;

    Seq(LlamaWeights w, int[] prompt, int joinStep, int newTokens) {
      this.prompt = prompt;
      this.joinStep = joinStep;
      this.newTokens = newTokens;
      alone = new Generator(w, prompt.length + newTokens);
      batched = new Generator(w, prompt.length + newTokens);
    }

    int pos() {
      return prompt.length + out.size() - 1;
    }
  }

  private static int argmax(float[] l) {
    int best = 0;
    for (int i = 1; i < l.length; i++) {
      if (l[i] > l[best]) {
        best = i;
      }
    }
    return best;
  }

  private static double margin(float[] l) {
    int best = argmax(l);
    double second = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < l.length; i++) {
      if (i != best) {
        second = Math.max(second, l[i]);
      }
    }
    return l[best] - second;
  }

  /**
   * Greedy decoding of {@code seqs} both ways: alone (token-by-token prefill and steps, as {@code
   * danlu generate}) and continuously batched (block prefill when a sequence joins, then batched
   * steps with whoever is active). Returns the largest absolute logit difference seen and checks
   * greedy tokens agree with margins above {@code 2 * tol}.
   */
  private static double run(LlamaWeights w, List<Seq> seqs, int maxBatch, double tol) {
    BatchDecoder dec = new BatchDecoder(w, maxBatch);
    double worst = 0;
    List<Seq> active = new ArrayList<>();
    List<Seq> waiting = new ArrayList<>(seqs);
    int maxActive = 0;
    for (int step = 0; !waiting.isEmpty() || !active.isEmpty(); step++) {
      // joins: block prefill, first token from the prefill's logits
      for (var it = waiting.iterator(); it.hasNext(); ) {
        Seq s = it.next();
        if (s.joinStep <= step && active.size() < maxBatch) {
          it.remove();
          float[] ref = null;
          for (int i = 0; i < s.prompt.length; i++) {
            ref = s.alone.step(s.prompt[i], i);
          }
          float[] got = s.batched.feed(s.prompt, 0, s.prompt.length, 0);
          worst = Math.max(worst, compare(ref, got, tol, "prefill"));
          s.out.add(argmax(ref));
          active.add(s);
        }
      }
      maxActive = Math.max(maxActive, active.size());
      active.removeIf(s -> s.out.size() == s.newTokens);
      if (active.isEmpty()) {
        continue;
      }
      Generator[] gens = new Generator[active.size()];
      int[] tokens = new int[gens.length];
      int[] positions = new int[gens.length];
      for (int b = 0; b < gens.length; b++) {
        Seq s = active.get(b);
        gens[b] = s.batched;
        tokens[b] = s.out.get(s.out.size() - 1);
        positions[b] = s.pos() + 1;
      }
      float[][] got = dec.step(gens, tokens, positions);
      for (int b = 0; b < gens.length; b++) {
        Seq s = active.get(b);
        float[] ref = s.alone.step(tokens[b], positions[b]);
        worst = Math.max(worst, compare(ref, got[b], tol, "step " + step + " row " + b));
        s.out.add(argmax(ref));
      }
      active.removeIf(s -> s.out.size() == s.newTokens);
    }
    assertTrue(maxActive > 1, "the schedule never batched");
    return worst;
  }

  /** Max |ref - got|, failing above tol or when the greedy choice could flip. */
  private static double compare(float[] ref, float[] got, double tol, String where) {
    double d = 0;
    for (int i = 0; i < ref.length; i++) {
      d = Math.max(d, Math.abs(ref[i] - got[i]));
    }
    assertTrue(d <= tol, where + ": logits differ by " + d + " > " + tol);
    assertEquals(argmax(ref), argmax(got), where + ": greedy token");
    assertTrue(
        margin(ref) > 2 * tol,
        where + ": top-two margin " + margin(ref) + " too small to decide the greedy token");
    return d;
  }

  @Test
  void float64RowsMatchDecodingAlone() {
    LlamaConfig c = TinyModels.config(null, 64);
    LlamaWeights w = LlamaWeights.random(c, 3, DataType.DOUBLE);
    SplittableRandom r = new SplittableRandom(5);
    List<Seq> seqs = new ArrayList<>();
    int[] lengths = {1, 5, 9, 3, 12, 2};
    int[] joins = {0, 0, 2, 3, 3, 7};
    int[] news = {10, 4, 8, 12, 6, 9};
    for (int i = 0; i < lengths.length; i++) {
      int[] p = r.ints(lengths[i], 0, c.vocabSize()).toArray();
      seqs.add(new Seq(w, p, joins[i], news[i]));
    }
    // the logits of a random model are O(1); margins are not needed for float64 (tol tiny)
    BatchDecoder dec = new BatchDecoder(w, 4);
    double worst = runNoMargin(w, seqs, dec);
    assertTrue(worst < 1e-9, "float64 difference " + worst);
  }

  /** As {@link #run} without the greedy margin check (random models have near ties). */
  private static double runNoMargin(LlamaWeights w, List<Seq> seqs, BatchDecoder dec) {
    double worst = 0;
    List<Seq> active = new ArrayList<>();
    List<Seq> waiting = new ArrayList<>(seqs);
    for (int step = 0; !waiting.isEmpty() || !active.isEmpty(); step++) {
      for (var it = waiting.iterator(); it.hasNext(); ) {
        Seq s = it.next();
        if (s.joinStep <= step && active.size() < dec.maxBatch()) {
          it.remove();
          float[] ref = null;
          for (int i = 0; i < s.prompt.length; i++) {
            ref = s.alone.step(s.prompt[i], i);
          }
          float[] got = s.batched.feed(s.prompt, 0, s.prompt.length, 0);
          worst = Math.max(worst, maxDiff(ref, got));
          s.out.add(argmax(ref));
          active.add(s);
        }
      }
      active.removeIf(s -> s.out.size() == s.newTokens);
      if (active.isEmpty()) {
        continue;
      }
      Generator[] gens = new Generator[active.size()];
      int[] tokens = new int[gens.length];
      int[] positions = new int[gens.length];
      for (int b = 0; b < gens.length; b++) {
        Seq s = active.get(b);
        gens[b] = s.batched;
        tokens[b] = s.out.get(s.out.size() - 1);
        positions[b] = s.pos() + 1;
      }
      float[][] got = dec.step(gens, tokens, positions);
      for (int b = 0; b < gens.length; b++) {
        Seq s = active.get(b);
        float[] ref = s.alone.step(tokens[b], positions[b]);
        worst = Math.max(worst, maxDiff(ref, got[b]));
        // both continue with the reference's token, so a near tie cannot make them diverge
        s.out.add(argmax(ref));
      }
      active.removeIf(s -> s.out.size() == s.newTokens);
    }
    return worst;
  }

  private static double maxDiff(float[] a, float[] b) {
    double d = 0;
    for (int i = 0; i < a.length; i++) {
      d = Math.max(d, Math.abs(a[i] - b[i]));
    }
    return d;
  }

  @Test
  void stories260kGreedyTokensMatchGeneratingAlone() throws Exception {
    var dir = Stories260kTest.modelDir();
    LlamaWeights w = HfLlama.load(dir, DataType.FLOAT);
    String[] prompts = {
      "",
      "Once upon a time",
      "Lily",
      "The dog ran",
      "One day, a little girl named Sue",
      "Tom and",
      "It was a sunny day",
      "The cat"
    };
    List<Seq> seqs = new ArrayList<>();
    try (TextTokenizer tok = TextTokenizer.load(dir.resolve("tokenizer.model"))) {
      for (int i = 0; i < prompts.length; i++) {
        int[] text = tok.encode(prompts[i]);
        int[] ids = new int[text.length + 1];
        ids[0] = tok.bosId();
        System.arraycopy(text, 0, ids, 1, text.length);
        seqs.add(new Seq(w, ids, i % 3 * 4, 24 + 8 * (i % 4)));
      }
    }
    double worst = run(w, seqs, 6, 1e-3);
    System.out.println("stories260K batched vs alone: max |logit diff| " + worst);
  }

  @Test
  void rejectsSharedOrForeignGenerators() {
    LlamaConfig c = TinyModels.config(null, 64);
    LlamaWeights w = LlamaWeights.random(c, 3, DataType.DOUBLE);
    LlamaWeights other = LlamaWeights.random(c, 4, DataType.DOUBLE);
    BatchDecoder dec = new BatchDecoder(w, 2);
    Generator g = new Generator(w, 8);
    g.step(1, 0);
    assertThrows(
        IllegalArgumentException.class,
        () -> dec.step(new Generator[] {g, g}, new int[] {1, 1}, new int[] {1, 1}));
    assertThrows(
        IllegalArgumentException.class,
        () -> dec.step(new Generator[] {new Generator(other, 8)}, new int[] {1}, new int[] {0}));
    assertThrows(
        IllegalArgumentException.class,
        () ->
            dec.step(
                new Generator[] {g, new Generator(w, 8), new Generator(w, 8)},
                new int[] {1, 1, 1},
                new int[] {1, 0, 0}));
  }
}
