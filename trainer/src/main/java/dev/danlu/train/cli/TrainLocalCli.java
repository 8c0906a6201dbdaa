package dev.danlu.train.cli;

import dev.danlu.data.cli.CliSupport;
import dev.danlu.train.comm.MasterRendezvous;
import dev.danlu.train.config.ConfigLoader;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code danlu train-local --config Y --nproc N [key=value ...]}: torchrun {@code --nproc_per_node}
 * for one host. Starts N {@link WorkerCli} JVMs with this JVM's java binary, classpath and flags, a
 * fresh master port, a per-job secret and the local rank ({@code DANLU_LOCAL_RANK}: worker i drives
 * CUDA device i when {@code ddp_backend} picks NCCL) in their environment, streams their output
 * with {@code [rank r]} prefixes, and if one dies kills the others and fails with the dead rank's
 * exit code and last log lines. Workers die with this process (shutdown hook).
 */
@Command(
    name = "train-local",
    sortOptions = false,
    description = {
      "Train with N local worker processes joined by the TCP ring, like torchrun.",
      "As torchrun --nproc_per_node: the workers' output is shown with [rank r] prefixes, and"
          + " when one dies the others are stopped and the run fails with its exit code and last"
          + " lines.",
      ""
    })
public final class TrainLocalCli implements Callable<Integer> {
  private static final int TAIL = 20;

  @Mixin private ConfigArgs configArgs;

  @Option(
      names = "--nproc",
      required = true,
      paramLabel = "<n>",
      converter = CliSupport.PositiveInt.class,
      description = "Worker processes (ranks) to start; sets world_size.")
  private int nproc;

  @Spec private CommandSpec spec;

  private final Map<String, String> extraEnv;
  private final PrintStream out;

  public TrainLocalCli() {
    this(Map.of(), System.err);
  }

  /**
   * @param extraEnv added to every worker's environment (tests)
   * @param out where the workers' output and the supervisor's lines go
   */
  public TrainLocalCli(Map<String, String> extraEnv, PrintStream out) {
    this.extraEnv = extraEnv;
    this.out = out;
  }

  public static void main(String[] args) {
    System.exit(run(args));
  }

  public static int run(String[] args) {
    return CliSupport.execute(new TrainLocalCli(), args, System.out, System.err);
  }

  /**
   * @param extraEnv added to every worker's environment (tests)
   * @param out everything: help, errors, the workers' output
   */
  public static int run(String[] args, Map<String, String> extraEnv, PrintStream out) {
    return CliSupport.execute(new TrainLocalCli(extraEnv, out), args, out, out);
  }

  @Override
  public Integer call() {
    String config = configArgs.config().toString();
    List<String> overrides = new ArrayList<>(configArgs.overrides());
    overrides.add("world_size=" + nproc); // the process count decides; last override wins
    // A bad file, key or value is one message here, not the same error from every rank.
    // ... and so is a stage that names no recipe
    dev.danlu.train.recipe.Recipes.forConfig(
        ConfigLoader.load(Path.of(config), overrides).config());
    List<Worker> workers = new ArrayList<>();
    Thread hook = new Thread(() -> workers.forEach(w -> w.process.destroyForcibly()));
    Runtime.getRuntime().addShutdownHook(hook);
    String secret = newSecret();
    // the launcher holds the rendezvous port from before the first worker starts to the end
    try (MasterRendezvous.Server master =
        MasterRendezvous.Server.start(
            "127.0.0.1", nproc, secret.getBytes(StandardCharsets.UTF_8))) {
      for (int r = 0; r < nproc; r++) {
        workers.add(
            start(r, nproc, master.port(), secret, workerArgs(config, overrides), extraEnv, out));
      }
      return supervise(workers, out);
    } catch (IOException e) {
      out.println("danlu train-local: cannot start workers: " + e.getMessage());
      return CliSupport.FAILED;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return 130;
    } finally {
      workers.forEach(w -> w.process.destroyForcibly());
      for (Worker w : workers) {
        try {
          w.process.waitFor();
          w.pump.join(5_000);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException e) {
        // already shutting down: the hook runs anyway
      }
    }
  }

  /** {@code --config Y [--verbose] key=value ...}: the same for every worker. */
  private List<String> workerArgs(String config, List<String> overrides) {
    List<String> a = new ArrayList<>(List.of("--config", config));
    if (CliSupport.verbose(spec)) {
      a.add(CliSupport.VERBOSE_OPTION);
    }
    a.addAll(overrides);
    return a;
  }

  /** One worker process and the thread copying its output. */
  private static final class Worker {
    final int rank;
    final Process process;
    final Thread pump;
    final Deque<String> tail = new ArrayDeque<>();

    Worker(int rank, Process process, PrintStream out) {
      this.rank = rank;
      this.process = process;
      String prefix = "[rank " + rank + "]";
      this.pump =
          new Thread(
              () -> {
                try (BufferedReader in =
                    new BufferedReader(
                        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                  String line;
                  while ((line = in.readLine()) != null) {
                    String shown = line.startsWith(prefix) ? line : prefix + " " + line;
                    out.println(shown);
                    synchronized (tail) {
                      tail.addLast(shown);
                      if (tail.size() > TAIL) {
                        tail.removeFirst();
                      }
                    }
                  }
                } catch (IOException e) {
                  // the process is gone; its exit code tells the story
                }
              },
              "train-local-rank-" + rank);
      pump.setDaemon(true);
      pump.start();
    }

    List<String> tail() {
      synchronized (tail) {
        return new ArrayList<>(tail);
      }
    }
  }

  private static Worker start(
      int rank,
      int world,
      int port,
      String secret,
      List<String> workerArgs,
      Map<String, String> extraEnv,
      PrintStream out)
      throws IOException {
    List<String> cmd = new ArrayList<>();
    cmd.add(ProcessHandle.current().info().command().orElse("java"));
    for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (!a.startsWith("-agentlib:jdwp") && !a.startsWith("-Xrunjdwp")) {
        cmd.add(a); // same heap, --add-opens and javacpp cache as the parent
      }
    }
    String extra = System.getenv().getOrDefault("DANLU_WORKER_JAVA_OPTS", "");
    extra = extraEnv.getOrDefault("DANLU_WORKER_JAVA_OPTS", extra);
    for (String a : extra.trim().split("\\s+")) {
      if (!a.isEmpty()) {
        cmd.add(a);
      }
    }
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(WorkerCli.class.getName());
    cmd.addAll(workerArgs);
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    Map<String, String> env = pb.environment();
    if (!env.containsKey("OMP_NUM_THREADS")) {
      // As torchrun: N processes each spinning as many OpenMP threads as there are cores
      // oversubscribe the CPU (spin-waiting threads steal each other's time slices).
      int cores = Runtime.getRuntime().availableProcessors();
      env.put("OMP_NUM_THREADS", Integer.toString(Math.max(1, cores / world)));
    }
    env.putAll(extraEnv);
    env.put(MasterRendezvous.ENV_MASTER_ADDR, "127.0.0.1");
    env.put(MasterRendezvous.ENV_MASTER_PORT, Integer.toString(port));
    env.put(MasterRendezvous.ENV_MASTER_IS_LAUNCHER, "1");
    env.put(MasterRendezvous.ENV_RANK, Integer.toString(rank));
    env.put(WorkerCli.ENV_LOCAL_RANK, Integer.toString(rank)); // one host: worker r drives GPU r
    env.put(MasterRendezvous.ENV_WORLD_SIZE, Integer.toString(world));
    env.put(MasterRendezvous.ENV_JOB_SECRET, secret);
    return new Worker(rank, pb.start(), out);
  }

  /** Waits for all workers; the first to fail takes the others down. */
  private static int supervise(List<Worker> workers, PrintStream out) throws InterruptedException {
    List<Worker> running = new ArrayList<>(workers);
    while (!running.isEmpty()) {
      for (Worker w : new ArrayList<>(running)) {
        if (w.process.isAlive()) {
          continue;
        }
        running.remove(w);
        int code = w.process.exitValue();
        if (code != 0) {
          w.pump.join(2_000);
          for (Worker o : workers) {
            o.process.destroyForcibly();
          }
          out.println(
              "danlu train-local: rank "
                  + w.rank
                  + " (pid "
                  + w.process.pid()
                  + ") exited with code "
                  + code
                  + (code > 128 ? " (signal " + (code - 128) + ")" : "")
                  + "; stopped the other ranks. Its last lines:");
          w.tail().forEach(l -> out.println("  " + l));
          return code;
        }
      }
      Thread.sleep(100);
    }
    out.println("danlu train-local: all " + workers.size() + " ranks finished");
    return 0;
  }

  private static String newSecret() {
    byte[] b = new byte[32];
    new SecureRandom().nextBytes(b);
    return HexFormat.of().formatHex(b);
  }
}
