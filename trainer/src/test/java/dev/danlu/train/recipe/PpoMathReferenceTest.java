package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.danlu.train.checkpoint.SafeTensors;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * {@link PpoMath} against the plain-PyTorch float64 reference of one PPO update ({@code
 * alignment_reference.py}'s {@code ppo.safetensors}, TRL 0.7's formulas): per-token rewards, GAE
 * advantages (whitened) and returns, both clipped losses, their gradients with respect to the new
 * log-probabilities and values (autograd), the clip fraction, approximate KL and the adaptive KL
 * controller's step. Both sides compute in float64 over at most 18 terms, so 1e-12 relative.
 */
class PpoMathReferenceTest {
  static final Path FILE = Path.of("src/test/resources/alignment-reference/ppo.safetensors");
  static final double TOL = 1e-12;

  @Test
  void onePpoUpdateMatchesPyTorch() throws IOException {
    try (SafeTensors st = SafeTensors.open(FILE)) {
      double[][] maskD = matrix(st, "mask");
      int[][] mask = new int[maskD.length][];
      for (int i = 0; i < mask.length; i++) {
        mask[i] = new int[maskD[i].length];
        for (int t = 0; t < mask[i].length; t++) {
          mask[i][t] = (int) maskD[i][t];
        }
      }
      double[][] oldLp = matrix(st, "old_logprobs");
      double[][] oldV = matrix(st, "old_values");
      double[][] rewards =
          PpoMath.rewards(st.readDoubles("scores"), oldLp, matrix(st, "ref_logprobs"), mask, 0.2);
      assertClose("rewards", matrix(st, "rewards"), rewards);
      PpoMath.Gae g = PpoMath.gae(oldV, rewards, mask, 1.0, 0.95);
      assertClose("advantages", matrix(st, "advantages"), g.advantages(), mask);
      assertClose("returns", matrix(st, "returns"), g.returns(), mask);
      PpoMath.Loss l =
          PpoMath.loss(
              oldLp,
              oldV,
              matrix(st, "new_logprobs"),
              matrix(st, "new_values"),
              g.advantages(),
              g.returns(),
              mask,
              0.2,
              0.2,
              0.1);
      assertScalar("loss", st.readDoubles("loss")[0], l.loss());
      assertScalar("pg_loss", st.readDoubles("pg_loss")[0], l.policyLoss());
      assertScalar("vf_loss", st.readDoubles("vf_loss")[0], l.valueLoss());
      assertScalar("clipfrac", st.readDoubles("clipfrac")[0], l.clipFraction());
      assertScalar("approxkl", st.readDoubles("approxkl")[0], l.approxKl());
      assertClose("d loss / d logprobs", matrix(st, "d_logprobs"), l.dLogprobs());
      assertClose("d loss / d values", matrix(st, "d_values"), l.dValues());
      // the fixture's rollouts exercise both branches of both clips
      assertEquals(true, l.clipFraction() > 0 && l.clipFraction() < 1, "clip fraction");
      PpoMath.AdaptiveKl kl = new PpoMath.AdaptiveKl(0.2, 6, 10000);
      kl.update(9.0, 256);
      assertScalar("adaptive kl", st.readDoubles("kl_coef_after")[0], kl.value());
    }
  }

  static double[][] matrix(SafeTensors st, String name) {
    long[] shape = st.info(name).shape();
    double[] flat = st.readDoubles(name);
    int n = (int) shape[0];
    int t = (int) shape[1];
    double[][] out = new double[n][t];
    for (int i = 0; i < n; i++) {
      System.arraycopy(flat, i * t, out[i], 0, t);
    }
    return out;
  }

  static void assertScalar(String what, double expected, double actual) {
    assertEquals(expected, actual, TOL * Math.max(1, Math.abs(expected)), what);
  }

  static void assertClose(String what, double[][] expected, double[][] actual) {
    assertClose(what, expected, actual, null);
  }

  /** With a mask: compares masked positions only (the reference leaves padding as computed). */
  static void assertClose(String what, double[][] expected, double[][] actual, int[][] mask) {
    double max = 0;
    for (double[] row : expected) {
      for (double v : row) {
        max = Math.max(max, Math.abs(v));
      }
    }
    for (int i = 0; i < expected.length; i++) {
      for (int t = 0; t < expected[i].length; t++) {
        if (mask == null || mask[i][t] != 0) {
          assertEquals(
              expected[i][t], actual[i][t], TOL * Math.max(1, max), what + " " + i + "," + t);
        }
      }
    }
  }
}
