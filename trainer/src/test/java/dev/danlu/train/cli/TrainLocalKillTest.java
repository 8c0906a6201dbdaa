package dev.danlu.train.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.checkpoint.TrainingCheckpoint;
import dev.danlu.train.recipe.RecipeTestSupport;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code train-local} with 2 worker JVMs on the TCP ring: kill -9 of one worker after a checkpoint
 * committed fails the run with that rank's exit code and last lines and stops the other rank; the
 * re-run resumes and ends with the weights of an uninterrupted in-process run (relative error ≤
 * 1e-6: the TCP ring and the local group sum in different orders), on 2 processes and on 3.
 */
class TrainLocalKillTest {
  @TempDir Path tmp;

  @AfterEach
  void noWorkerSurvives() {
    ProcessHandle.current()
        .descendants()
        .filter(TrainLocalKillTest::isWorker)
        .forEach(ProcessHandle::destroyForcibly);
  }

  static boolean isWorker(ProcessHandle p) {
    try {
      // ProcessHandle.Info drops the arguments of long command lines; /proc has them all
      return Files.readString(Path.of("/proc/" + p.pid() + "/cmdline"), StandardCharsets.ISO_8859_1)
          .contains(WorkerCli.class.getName());
    } catch (java.io.IOException e) {
      return false; // already gone
    }
  }

  @Test
  void killedWorkerFailsTheRunAndTheRerunResumesToTheSameWeights() throws Exception {
    killAndResume("lora", "");
  }

  /**
   * The same with AdaLoRA: the allocator has masked before the kill (steps 2 and 3), and its state
   * comes back from checkpoint-3 on 2 and on 3 processes.
   */
  @Test
  void adaLoraKilledAndResumedGivesTheSameWeights() throws Exception {
    killAndResume(
        "adalora",
        "peft_type: ADALORA\ninit_r: 4\ntarget_r: 2\ntinit: 1\ntfinal: 2\ndeltaT: 1\n"
            + "total_step: 8\n");
  }

  private void killAndResume(String name, String extraYaml) throws Exception {
    Path tmp = Files.createDirectories(this.tmp.resolve(name));
    Path model = RecipeTestSupport.model(tmp.resolve("model"));
    Path data = RecipeTestSupport.dataset(tmp.resolve("data"));
    Path yaml = tmp.resolve("run.yaml");
    Path out = tmp.resolve("out");
    Files.writeString(
        yaml,
        RecipeTestSupport.yaml()
            + "model_name_or_path: "
            + model
            + "\ndataset_dir: "
            + data
            + "\noutput_dir: "
            + out
            + "\nmax_steps: 8\nsave_steps: 3\ngradient_accumulation_steps: 3\n"
            + extraYaml);
    Map<String, float[]> reference =
        RecipeTestSupport.trainInProcess(2, yaml, tmp.resolve("reference"));

    ByteArrayOutputStream log = new ByteArrayOutputStream();
    PrintStream ps = new PrintStream(log, true, StandardCharsets.UTF_8);
    AtomicInteger rc = new AtomicInteger(-1);
    Thread run =
        new Thread(
            () ->
                rc.set(
                    TrainLocalCli.run(
                        new String[] {"--config", yaml.toString(), "--nproc", "2"},
                        Map.of("DANLU_STEP_DELAY_MS", "400"),
                        ps)));
    run.start();
    Path ckpt3 = TrainingCheckpoint.dirFor(out, 3);
    long deadline = System.nanoTime() + 120_000_000_000L;
    while (!TrainingCheckpoint.isCommitted(ckpt3) && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertTrue(TrainingCheckpoint.isCommitted(ckpt3), "no committed checkpoint-3:\n" + log);
    Optional<ProcessHandle> victim =
        ProcessHandle.current().descendants().filter(TrainLocalKillTest::isWorker).findFirst();
    assertTrue(victim.isPresent(), "no worker process to kill:\n" + log);
    victim.get().destroyForcibly(); // SIGKILL
    run.join(60_000);
    String first = log.toString(StandardCharsets.UTF_8);
    assertEquals(137, rc.get(), first);
    assertTrue(first.contains("exited with code 137 (signal 9); stopped the other ranks"), first);
    assertEquals(
        0, ProcessHandle.current().descendants().filter(TrainLocalKillTest::isWorker).count());
    assertTrue(Files.notExists(out.resolve("pt_lora_model")), first);

    // the same interrupted state, resumed by 3 processes (global batch kept: 3 x 2 = 2 x 3)
    Path out3 = tmp.resolve("out3");
    copyTree(out, out3);
    ByteArrayOutputStream log3 = new ByteArrayOutputStream();
    int rc3 =
        TrainLocalCli.run(
            new String[] {
              "--config",
              yaml.toString(),
              "--nproc",
              "3",
              "output_dir=" + out3,
              "gradient_accumulation_steps=2"
            },
            Map.of(),
            new PrintStream(log3, true, StandardCharsets.UTF_8));
    String third = log3.toString(StandardCharsets.UTF_8);
    assertEquals(0, rc3, third);
    assertTrue(third.contains("at step 3 (written by 2 ranks, now 3)"), third);
    double err3 =
        dev.danlu.testkit.Floats.relError(
            RecipeTestSupport.tensors(out3.resolve("pt_lora_model/adapter_model.safetensors")),
            reference);
    System.out.printf("train-local kill -9, resume on 3 processes: relative error %.3e%n", err3);
    // 3 ranks reduce the gradients in another order than 2 (ring chunks of a third, not a half):
    // each step's float32 sums differ in the last bits, Adam's division by sqrt(v) carries that
    // into the updates and AdaLoRA's masked E compounds it over the steps (measured 6e-7 to
    // 2.7e-6 across runs and machines). A mask that flipped between the runs would differ by
    // whole singular triplets (relative error ~1e-1), so 1e-5 still tells the two apart.
    assertTrue(err3 <= 1e-5, "relative error " + err3 + "\n" + third);

    ByteArrayOutputStream log2 = new ByteArrayOutputStream();
    int rc2 =
        TrainLocalCli.run(
            new String[] {"--config", yaml.toString(), "--nproc", "2"},
            Map.of(),
            new PrintStream(log2, true, StandardCharsets.UTF_8));
    String second = log2.toString(StandardCharsets.UTF_8);
    assertEquals(0, rc2, second);
    assertTrue(second.contains("[rank 0] resumed from "), second);
    assertTrue(second.contains("[rank 1] "), second);
    double err =
        dev.danlu.testkit.Floats.relError(
            RecipeTestSupport.tensors(out.resolve("pt_lora_model/adapter_model.safetensors")),
            reference);
    System.out.printf("train-local kill -9 + resume vs uninterrupted: relative error %.3e%n", err);
    assertTrue(err <= 1e-6, "relative error " + err + "\n" + second);
  }

  private static void copyTree(Path from, Path to) throws java.io.IOException {
    try (java.util.stream.Stream<Path> all = Files.walk(from)) {
      for (Path p : all.toList()) {
        Path dst = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(dst);
        } else {
          Files.copy(p, dst);
        }
      }
    }
  }
}
