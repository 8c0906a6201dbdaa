package dev.danlu.train.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.danlu.train.comm.MasterRendezvous;
import dev.danlu.train.tensor.Backend;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The worker's backend choice on this CPU build: asking for NCCL stops the worker at start-up with
 * what to do (no UnsatisfiedLinkError, no stack trace), before any data or model is read.
 */
class WorkerCliBackendTest {
  @TempDir Path tmp;

  @BeforeEach
  void cpuBuildOnly() {
    assumeTrue(Backend.loaded() == Backend.Kind.CPU, "these cases are about the CPU build");
  }

  private String run(int expected, String... overrides) throws Exception {
    Path yaml = tmp.resolve("w.yaml");
    Files.writeString(
        yaml,
        "model_name_or_path: "
            + tmp.resolve("no-model")
            + "\ndataset_dir: "
            + tmp.resolve("no-data")
            + "\noutput_dir: "
            + tmp.resolve("out")
            + "\nmax_steps: 1\n");
    String[] args = new String[overrides.length + 2];
    args[0] = "--config";
    args[1] = yaml.toString();
    System.arraycopy(overrides, 0, args, 2, overrides.length);
    Map<String, String> env =
        Map.of(
            MasterRendezvous.ENV_RANK, "0",
            MasterRendezvous.ENV_WORLD_SIZE, "1",
            MasterRendezvous.ENV_MASTER_ADDR, "127.0.0.1",
            MasterRendezvous.ENV_MASTER_PORT, "1",
            MasterRendezvous.ENV_JOB_SECRET, "s",
            WorkerCli.ENV_LOCAL_RANK, "0");
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int rc = WorkerCli.run(args, env, new PrintStream(out, true, StandardCharsets.UTF_8));
    String log = out.toString(StandardCharsets.UTF_8);
    assertEquals(expected, rc, log);
    return log;
  }

  @Test
  void ncclOnTheCpuBuildFailsAtStartUpSayingWhatToDo() throws Exception {
    String log = run(1, "ddp_backend=nccl");
    assertTrue(log.contains("[rank 0] error: ddp_backend=nccl"), log);
    assertTrue(log.contains("mvn -Pcuda") && log.contains("ddp_backend=tcp"), log);
    assertFalse(log.contains("UnsatisfiedLinkError"), log);
    assertFalse(log.contains("\tat "), "no stack trace:\n" + log);
  }

  @Test
  void autoOnTheCpuBuildChoosesTcp() throws Exception {
    // the run then fails on the missing dataset: the choice was made and logged before
    String log = run(1, "ddp_backend=auto");
    assertTrue(log.contains("[rank 0] ddp_backend=auto -> tcp (ND4J CPU backend)"), log);
  }
}
