package dev.danlu.train.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.model.Generator;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.model.Sampler;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The continuous-batching engine on a small random model in float64 (no fixtures needed): greedy
 * sequences that join at different times and stop at different lengths each get what {@link
 * Generator#generate} gives alone (float64 rounding differences between batched and single-row
 * gemms are ~1e-15, far below any logit gap of a random model's argmax); a cancelled sequence frees
 * its place, queued or active; closing cancels what is left.
 */
class EngineTest {
  private static final LlamaConfig C =
      new LlamaConfig(32, 48, 2, 4, 2, 64, 1e-5, 10000.0, null, false, 128);

  /** Collects a sequence's tokens and its end. */
  private static final class Collect implements Sequence.Listener {
    final List<Integer> tokens = new ArrayList<>();
    final CompletableFuture<Sequence.Finish> end = new CompletableFuture<>();
    volatile int reported = -1;

    @Override
    public boolean onToken(int token) {
      tokens.add(token);
      return true;
    }

    @Override
    public void onFinish(Sequence.Finish reason, int completionTokens) {
      reported = completionTokens;
      end.complete(reason);
    }

    int[] ids() {
      return tokens.stream().mapToInt(Integer::intValue).toArray();
    }
  }

  @Test
  void joiningAndLeavingSequencesMatchGeneratingAlone() throws Exception {
    LlamaWeights w = LlamaWeights.random(C, 11, DataType.DOUBLE);
    int[][] prompts = {{1, 5, 9}, {1, 40}, {1, 7, 7, 7, 30, 2}, {1}, {1, 33, 12, 8}};
    int[] maxNew = {20, 7, 15, 30, 3};
    int stop = 63; // a stop id: sequences that sample it end early
    Metrics m = new Metrics();
    try (Engine e = new Engine(w, 3, 8, false, m)) {
      List<Collect> got = new ArrayList<>();
      for (int i = 0; i < prompts.length; i++) {
        Collect c = new Collect();
        got.add(c);
        e.submit(
            List.of(
                new Sequence(prompts[i], maxNew[i], new Sampler(0, 1, 0), new int[] {stop}, c)));
        if (i % 2 == 1) {
          Thread.sleep(30); // later ones join a batch already decoding
        }
      }
      for (int i = 0; i < prompts.length; i++) {
        Sequence.Finish f = got.get(i).end.get(60, TimeUnit.SECONDS);
        int[] alone =
            new Generator(w, prompts[i].length + maxNew[i] - 1)
                .generate(prompts[i], maxNew[i], new Sampler(0, 1, 0), stop);
        assertArrayEquals(alone, got.get(i).ids(), "sequence " + i);
        assertEquals(alone.length == maxNew[i] ? Sequence.Finish.LENGTH : Sequence.Finish.STOP, f);
        assertEquals(alone.length, got.get(i).reported);
      }
      assertTrue(m.decodeRows.sum() > m.decodeSteps.sum(), "nothing was decoded together");
      assertEquals(0, m.activeSequences());
      assertEquals(0, m.queuedSequences());
    }
  }

  @Test
  void cancelledSequencesFreeTheirPlaceAndCloseCancelsTheRest() throws Exception {
    LlamaWeights w = LlamaWeights.random(C, 12, DataType.DOUBLE);
    System.setProperty("danlu.serve.step.delay.ms", "10");
    Metrics m = new Metrics();
    Engine e;
    try {
      e = new Engine(w, 1, 1, false, m);
    } finally {
      System.clearProperty("danlu.serve.step.delay.ms");
    }
    Collect a = new Collect();
    Collect b = new Collect();
    Sequence sa = new Sequence(new int[] {1, 2}, 120, new Sampler(0, 1, 0), new int[0], a);
    Sequence sb = new Sequence(new int[] {1, 3}, 120, new Sampler(0, 1, 0), new int[0], b);
    e.submit(List.of(sa));
    while (m.activeSequences() < 1) {
      Thread.sleep(5);
    }
    e.submit(List.of(sb)); // waits: one slot
    // the queue (1) is full now
    assertThrows(
        Engine.QueueFullException.class,
        () ->
            e.submit(
                List.of(
                    new Sequence(
                        new int[] {1}, 5, new Sampler(0, 1, 0), new int[0], new Collect()))));
    sa.cancel();
    assertEquals(Sequence.Finish.CANCELLED, a.end.get(30, TimeUnit.SECONDS));
    assertTrue(a.reported < 120);
    // b took the freed slot; closing the engine cancels it
    while (m.activeSequences() < 1 || b.tokens.isEmpty()) {
      Thread.sleep(5);
    }
    assertEquals(0, m.queuedSequences());
    e.close();
    assertEquals(Sequence.Finish.CANCELLED, b.end.get(30, TimeUnit.SECONDS));
    assertEquals(0, m.activeSequences());
    assertEquals(1, m.cancelledSequences());
    assertThrows(IllegalStateException.class, () -> e.submit(List.of(sb)));
  }
}
