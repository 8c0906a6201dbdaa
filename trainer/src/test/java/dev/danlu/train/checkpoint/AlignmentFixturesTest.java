package dev.danlu.train.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The committed preference-objective fixtures ({@code src/test/resources/alignment-reference/}) are
 * what {@code src/test/python/alignment_reference.py} writes today, with {@link
 * ReferenceFixturesTest}'s rules: computed float32 tensors within one ulp (torch's float64 sums may
 * be ordered differently on another CPU), everything else byte for byte.
 */
class AlignmentFixturesTest {
  /** Files holding results of float64 products and sums. */
  static final Set<String> COMPUTED =
      Set.of(
          "io.safetensors",
          "dpo-grads.safetensors",
          "rm-grads.safetensors",
          "ppo-model-grads.safetensors",
          "ppo-iteration-grads.safetensors");

  @Test
  void committedFixturesAreExactlyWhatTheScriptWrites(@TempDir Path out) throws Exception {
    PythonReader.assumeAvailable("torch");
    PythonReader.Result r =
        PythonReader.run(
            List.of("src/test/python/alignment_reference.py", "--out", out.toString()));
    assertEquals(0, r.exit(), r.out());
    Path committedDir = Path.of("src/test/resources/alignment-reference");
    List<String> made;
    try (Stream<Path> s = Files.list(out)) {
      made = s.map(p -> p.getFileName().toString()).sorted().toList();
    }
    try (Stream<Path> s = Files.list(committedDir)) {
      assertEquals(
          s.map(p -> p.getFileName().toString()).sorted().toList(),
          made,
          "the script writes exactly the committed fixture files");
    }
    for (String f : made) {
      if (f.equals("ppo.safetensors")
          || f.equals("ppo-model.safetensors")
          || f.equals("ppo-iteration.safetensors")) {
        // float64 results stored as F64: within 1e-12 relative (sums in another order move a
        // float64 result by ~1e-16 relative)
        try (SafeTensors a = SafeTensors.open(committedDir.resolve(f));
            SafeTensors b = SafeTensors.open(out.resolve(f))) {
          assertEquals(a.names(), b.names());
          for (String n : a.names()) {
            double[] x = a.readDoubles(n);
            double[] y = b.readDoubles(n);
            for (int i = 0; i < x.length; i++) {
              org.junit.jupiter.api.Assertions.assertEquals(
                  x[i], y[i], 1e-12 * Math.max(1, Math.abs(x[i])), f + " " + n);
            }
          }
        }
      } else if (COMPUTED.contains(f)) {
        ReferenceFixturesTest.assertComputedMatch(committedDir.resolve(f), out.resolve(f));
      } else {
        // the policy adapter is a slice of the committed tiny adapter and the value head comes
        // from the seeded generator rounded to float32: no sums, the same bytes everywhere
        assertArrayEquals(
            Files.readAllBytes(committedDir.resolve(f)),
            Files.readAllBytes(out.resolve(f)),
            f + " differs from a fresh run of alignment_reference.py: regenerate and commit");
      }
    }
  }
}
