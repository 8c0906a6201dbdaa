package dev.danlu.launch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.danlu.launch.smoke.RingSmokeWork;
import dev.danlu.launch.testwork.AlwaysFailsWork;
import dev.danlu.launch.testwork.FailOnceWork;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code danlu train} end to end in Spark local mode: 2 ranks as 2 barrier tasks. */
class LocalTrainTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path tmp;

  private record Run(int exit, String out, String err) {}

  private static Run train(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int exit =
        TrainCommand.run(
            args,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8),
            conf -> new JavaSparkContext(conf.set("spark.ui.enabled", "false")));
    Run r =
        new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    System.out.println(r.out + r.err);
    return r;
  }

  private static String[] resultValues(TrainFixture f) throws Exception {
    JsonNode r = JSON.readTree(f.output.resolve(RingSmokeWork.RESULT_FILE).toFile());
    String[] v = new String[r.get("values").size()];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.get("values").get(i).asText();
    }
    return v;
  }

  @Test
  void twoRanksExchangeOverTheRingAndMatchTheReference() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 8);
    Run r =
        train(
            "--config",
            f.config.toString(),
            "--work-class",
            RingSmokeWork.class.getName(),
            "--progress-interval-seconds",
            "1");
    assertEquals(0, r.exit, r.err);
    String[] expected = TrainFixture.expectedValues(7, 2, 8);
    assertArrayEquals(expected, resultValues(f));
    assertTrue(r.out.contains("rank 0: step 8 value " + expected[0]), r.out);
    assertTrue(r.out.contains("rank 1: step 8 value " + expected[1]), r.out);
    // The console progress line came from the ranks' live reports.
    assertTrue(r.out.contains("danlu: attempt 1: step "), r.out);
  }

  @Test
  void aFailedRankMakesTheLauncherRunTheStageAgainFromTheCheckpoint() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 8);
    Run r = train("--config", f.config.toString(), "--work-class", FailOnceWork.class.getName());
    assertEquals(0, r.exit, r.err);
    assertTrue(r.out.contains("attempt 1 failed"), r.out);
    assertTrue(r.out.contains("simulated GPU fault at step 3"), r.out);
    assertTrue(r.out.contains("training finished after 2 attempt(s)"), r.out);
    JsonNode result = JSON.readTree(f.output.resolve(RingSmokeWork.RESULT_FILE).toFile());
    assertNotNull(result.get("resumedFrom").textValue(), "the second attempt resumed");
    assertArrayEquals(TrainFixture.expectedValues(7, 2, 8), resultValues(f));
  }

  @Test
  void aPermanentFailureExitsNonZeroNamingRankAndRootCause() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 8);
    Run r =
        train(
            "--config",
            f.config.toString(),
            "--work-class",
            AlwaysFailsWork.class.getName(),
            "--max-attempts",
            "3");
    assertEquals(1, r.exit);
    assertTrue(r.err.contains("rank 1/2"), r.err);
    assertTrue(r.err.contains("No space left on device: /scratch/shard-00003.arrow"), r.err);
    // Identical failure twice without progress: the third attempt is not wasted.
    assertTrue(r.err.contains("training failed after 2 attempt(s) (max_attempts 3)"), r.err);
  }

  @Test
  void aStrangerOnARankPortIsTurnedAwayAndTheJobIsNotDisturbed() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 2, 5);
    Run r =
        train(
            "--config",
            f.config.toString(),
            "--work-class",
            dev.danlu.launch.testwork.StrangerFirstWork.class.getName());
    assertEquals(0, r.exit, r.err);
    assertTrue(r.out.contains("training finished after 1 attempt(s)"), r.out);
    assertArrayEquals(TrainFixture.expectedValues(7, 2, 5), resultValues(f));
  }

  @Test
  void worldSizeOneRunsWithoutPeers() throws Exception {
    TrainFixture f = new TrainFixture(tmp, 1, 3);
    Run r = train("--config", f.config.toString(), "--work-class", RingSmokeWork.class.getName());
    assertEquals(0, r.exit, r.err);
    assertArrayEquals(TrainFixture.expectedValues(7, 1, 3), resultValues(f));
  }

  static SparkConf localConf() {
    return new SparkConf().setMaster("local[2]").setAppName("danlu-test");
  }
}
