package dev.danlu.train.zero;

import static dev.danlu.train.zero.LeastSquaresProblem.TOTAL_STEPS;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.comm.Communicator;
import dev.danlu.train.comm.LocalCommunicator;
import dev.danlu.train.comm.RankThreads;
import dev.danlu.train.comm.TcpRingCommunicator;
import dev.danlu.train.comm.TcpRingOptions;
import dev.danlu.train.zero.LeastSquaresProblem.Rank;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * ZeRO-2 over N ranks equals plain single-process AdamW, under accumulation, overflow and resume.
 */
class Zero2OptimizerTest {
  private static final double TOL = 1e-6;

  static List<Rank> run(
      List<? extends Communicator> comms, int micro, int bucket, Set<Integer> overflow)
      throws Exception {
    return RankThreads.run(
        comms.size(),
        r -> {
          Rank rank = new Rank(comms.get(r), bucket);
          rank.train(0, TOTAL_STEPS, micro, overflow);
          return rank;
        });
  }

  private static void assertMatchesReference(List<Rank> ranks, float[] want, String what) {
    float[] p0 = ranks.get(0).params();
    for (Rank r : ranks) {
      // bitwise: every rank holds the same all-gathered bytes (copies, no arithmetic)
      assertArrayEquals(
          p0, r.params(), what + ": replicated params differ on rank " + r.comm.rank());
    }
    double rel = LeastSquaresProblem.relativeError(p0, want);
    double elem = LeastSquaresProblem.maxElementRelativeError(p0, want);
    System.out.printf("%s: relative error %.2e (worst element %.2e)%n", what, rel, elem);
    assertTrue(rel <= TOL, what + ": relative error " + rel);
    assertTrue(elem <= 10 * TOL, what + ": worst element relative error " + elem);
  }

  @Test
  void oneTwoThreeRanksLocalEqualPlainAdamW() throws Exception {
    float[] want = LeastSquaresProblem.reference(TOTAL_STEPS, Set.of());
    float[] init = LeastSquaresProblem.reference(0, Set.of());
    assertTrue(
        LeastSquaresProblem.relativeError(init, want) > 1e-2,
        "the test problem must move the weights");
    for (int n = 1; n <= 3; n++) {
      for (int bucket : new int[] {5, 1 << 20}) {
        List<Rank> ranks = run(LocalCommunicator.group(n), 1, bucket, Set.of());
        assertMatchesReference(ranks, want, "local N=" + n + " bucket=" + bucket);
        boolean clipped =
            ranks.get(0).results.stream()
                .anyMatch(s -> s.gradNorm() > LeastSquaresProblem.MAX_GRAD_NORM);
        boolean unclipped =
            ranks.get(0).results.stream()
                .anyMatch(s -> s.gradNorm() < LeastSquaresProblem.MAX_GRAD_NORM);
        assertTrue(
            clipped && unclipped,
            "the run must exercise both clipped and unclipped steps: " + ranks.get(0).results);
        assertEquals(TOTAL_STEPS, ranks.get(0).opt.appliedSteps());
      }
    }
  }

  @Test
  void oneTwoThreeRanksOverTcpEqualPlainAdamW() throws Exception {
    float[] want = LeastSquaresProblem.reference(TOTAL_STEPS, Set.of());
    byte[] secret = "zero-test".getBytes(StandardCharsets.UTF_8);
    for (int n = 1; n <= 3; n++) {
      List<TcpRingCommunicator> ring =
          RankThreads.tcpRing(n, secret, TcpRingOptions.defaults().withSliceBytes(32));
      try {
        assertMatchesReference(run(ring, 1, 7, Set.of()), want, "tcp N=" + n);
      } finally {
        ring.forEach(TcpRingCommunicator::close);
      }
    }
  }

  @Test
  void fourMicroBatchesOnOneRankEqualOneOnEachOfFourRanks() throws Exception {
    List<Rank> accum = run(LocalCommunicator.group(1), 4, 16, Set.of());
    List<Rank> wide = run(LocalCommunicator.group(4), 1, 16, Set.of());
    double rel = LeastSquaresProblem.relativeError(accum.get(0).params(), wide.get(0).params());
    System.out.printf("accumulation (4,1) vs (1,4): relative error %.2e%n", rel);
    assertTrue(rel <= TOL, "relative error " + rel);
  }

  @Test
  void overflowOnOneRankSkipsTheStepEverywhereAndFollowsHysteresis() throws Exception {
    Set<Integer> overflow = Set.of(3, 4);
    List<Rank> ranks = run(LocalCommunicator.group(3), 1, 16, overflow);
    for (Rank r : ranks) {
      var res = r.results;
      assertFalse(res.get(2).skipped());
      assertTrue(
          res.get(3).skipped() && res.get(4).skipped(), "rank " + r.comm.rank() + " did not skip");
      assertFalse(res.get(5).skipped());
      double s = LeastSquaresProblem.LOSS_SCALE;
      assertEquals(s, res.get(3).lossScale()); // scale used in the overflowing step
      assertEquals(s, res.get(4).lossScale()); // first overflow only spent the hysteresis
      assertEquals(s / 2, res.get(5).lossScale()); // second overflow halved it
      assertEquals(
          res.get(3).lr(), res.get(5).lr(), "LR schedule must not advance on skipped steps");
      assertEquals(TOTAL_STEPS - 2, r.opt.appliedSteps());
    }
    assertMatchesReference(
        ranks, LeastSquaresProblem.reference(TOTAL_STEPS, overflow), "overflow at steps 3,4");
  }

  @Test
  void stateSavedOnTwoRanksResumesOnThreeRanks() throws Exception {
    int half = TOTAL_STEPS / 2;
    List<LocalCommunicator> two = LocalCommunicator.group(2);
    List<Rank> first =
        RankThreads.run(
            2,
            r -> {
              Rank rank = new Rank(two.get(r), 8);
              rank.train(0, half, 1, Set.of());
              return rank;
            });
    List<OptimizerState> saved = new ArrayList<>();
    for (Rank r : first) {
      saved.add(r.opt.exportState());
    }
    List<LocalCommunicator> three = LocalCommunicator.group(3);
    List<Rank> resumed =
        RankThreads.run(
            3,
            r -> {
              Rank rank = new Rank(three.get(r), 8); // starts from the initial weights ...
              rank.opt.importState(saved); // ... which the import replaces
              assertEquals(half, rank.opt.appliedSteps());
              rank.train(half, TOTAL_STEPS, 1, Set.of());
              return rank;
            });
    assertNotEquals(first.get(0).opt.shard().size(), resumed.get(0).opt.shard().size());
    List<Rank> uninterrupted = run(LocalCommunicator.group(3), 1, 8, Set.of());
    double rel =
        LeastSquaresProblem.relativeError(resumed.get(0).params(), uninterrupted.get(0).params());
    System.out.printf("resume 2->3 vs uninterrupted 3 ranks: relative error %.2e%n", rel);
    assertTrue(rel <= TOL, "relative error " + rel);
    assertMatchesReference(
        resumed, LeastSquaresProblem.reference(TOTAL_STEPS, Set.of()), "resumed 2->3");
  }
}
