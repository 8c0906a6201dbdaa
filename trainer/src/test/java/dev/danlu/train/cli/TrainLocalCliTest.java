package dev.danlu.train.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.recipe.RecipeTestSupport;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * train-local's supervision: usage errors, a failing worker fails the run with its exit code and
 * last lines, and the workers die with the launcher process (shutdown hook on SIGTERM).
 */
class TrainLocalCliTest {
  @TempDir Path tmp;
  private Process launcher;

  @AfterEach
  void cleanUp() {
    if (launcher != null) {
      launcher.descendants().forEach(ProcessHandle::destroyForcibly);
      launcher.destroyForcibly();
    }
  }

  static String run(int expected, String... args) {
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    int rc = TrainLocalCli.run(args, Map.of(), new PrintStream(log, true, StandardCharsets.UTF_8));
    String out = log.toString(StandardCharsets.UTF_8);
    assertEquals(expected, rc, out);
    return out;
  }

  @Test
  void usageErrors() {
    String out = run(2, "--config", "x.yaml");
    assertTrue(out.startsWith("danlu train-local: Missing required option: '--nproc"), out);
    assertTrue(out.contains("Usage: danlu train-local"), out);
    out = run(2, "--nproc", "two");
    assertTrue(out.contains("option '--nproc': 'two' is not a whole number ≥ 1"), out);
    out = run(2, "--config", "x.yaml", "--nproc", "2", "bogus");
    assertTrue(out.contains("'bogus' is not a config override: expected key=value"), out);
    out = run(2, "--config", "x.yaml", "--nproc", "2", "--learning_rate=1e-4");
    assertTrue(out.contains("Unknown option: '--learning_rate=1e-4'"), out);
    assertTrue(out.contains("without dashes, e.g. learning_rate=1e-4"), out);
    out = run(0, "--help");
    assertTrue(out.startsWith("Usage: danlu train-local"), out);
    assertTrue(out.contains("key=value") && out.contains("--nproc"), out);
  }

  /** A bad override is one message from the launcher, before any worker starts. */
  @Test
  void unknownConfigKeyFailsBeforeAnyWorkerStarts() throws Exception {
    Path yaml = tmp.resolve("ok.yaml");
    Files.writeString(
        yaml,
        RecipeTestSupport.yaml()
            + "model_name_or_path: "
            + tmp.resolve("model")
            + "\ndataset_dir: "
            + tmp.resolve("data")
            + "\noutput_dir: "
            + tmp.resolve("out")
            + "\n");
    String out = run(1, "--config", yaml.toString(), "--nproc", "2", "learning_rte=1e-4");
    assertTrue(out.startsWith("danlu train-local: "), out);
    assertTrue(out.contains("unknown key 'learning_rte'"), out);
    assertTrue(out.contains("did you mean 'learning_rate'"), out);
    assertFalse(out.contains("[rank "), "no worker may start:\n" + out);
    assertFalse(out.contains("\tat "), "no stack trace:\n" + out);
    out = run(1, "--config", tmp.resolve("missing.yaml").toString(), "--nproc", "1");
    assertTrue(out.contains("missing.yaml: config file does not exist"), out);
  }

  @Test
  void failingWorkerFailsTheRunWithItsExitCodeAndLastLines() throws Exception {
    Path yaml = tmp.resolve("bad.yaml");
    Path missing = tmp.resolve("no-such-dataset");
    Path model = RecipeTestSupport.model(tmp.resolve("model"));
    Files.writeString(
        yaml,
        RecipeTestSupport.yaml()
            + "model_name_or_path: "
            + model
            + "\ndataset_dir: "
            + missing
            + "\noutput_dir: "
            + tmp.resolve("out")
            + "\n");
    String out = run(1, "--config", yaml.toString(), "--nproc", "2");
    assertTrue(out.contains("exited with code 1; stopped the other ranks. Its last lines:"), out);
    assertTrue(out.contains("error: " + missing.resolve("manifest.json")), out);
  }

  @Test
  void workersDieWithTheLauncherProcess() throws Exception {
    Path yaml = tmp.resolve("run.yaml");
    Files.writeString(
        yaml,
        RecipeTestSupport.yaml()
            + "model_name_or_path: "
            + RecipeTestSupport.model(tmp.resolve("model"))
            + "\ndataset_dir: "
            + RecipeTestSupport.dataset(tmp.resolve("data"))
            + "\noutput_dir: "
            + tmp.resolve("out")
            + "\nmax_steps: 8\nsave_steps: 3\ngradient_accumulation_steps: 3\n");
    List<String> cmd = new ArrayList<>();
    cmd.add(ProcessHandle.current().info().command().orElse("java"));
    cmd.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
    cmd.addAll(
        List.of(
            "-cp",
            System.getProperty("java.class.path"),
            TrainLocalCli.class.getName(),
            "--config",
            yaml.toString(),
            "--nproc",
            "2"));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    pb.redirectOutput(tmp.resolve("launcher.log").toFile());
    pb.environment().put("DANLU_STEP_DELAY_MS", "2000");
    launcher = pb.start();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
    while (workers().size() < 2 && System.nanoTime() < deadline) {
      Thread.sleep(100);
    }
    List<ProcessHandle> ws = workers();
    assertEquals(2, ws.size(), Files.readString(tmp.resolve("launcher.log")));
    launcher.destroy(); // SIGTERM: the JVM runs its shutdown hooks
    assertTrue(launcher.waitFor(30, TimeUnit.SECONDS));
    for (ProcessHandle w : ws) {
      w.onExit().get(30, TimeUnit.SECONDS);
      assertTrue(!w.isAlive(), "worker " + w.pid() + " outlived the launcher");
    }
  }

  private List<ProcessHandle> workers() {
    return launcher.descendants().filter(TrainLocalKillTest::isWorker).toList();
  }
}
