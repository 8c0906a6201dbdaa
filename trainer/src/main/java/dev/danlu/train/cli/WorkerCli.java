package dev.danlu.train.cli;

import dev.danlu.data.cli.CliSupport;
import dev.danlu.train.comm.CommSpec;
import dev.danlu.train.comm.Communicator;
import dev.danlu.train.comm.Communicators;
import dev.danlu.train.comm.DdpBackend;
import dev.danlu.train.comm.MasterRendezvous;
import dev.danlu.train.comm.TcpRingOptions;
import dev.danlu.train.config.ConfigLoader;
import dev.danlu.train.recipe.ProgressListener;
import dev.danlu.train.recipe.Recipes;
import dev.danlu.train.recipe.TrainContext;
import dev.danlu.train.tensor.Backend;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.concurrent.Callable;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code danlu worker --config Y [key=value ...]}: one training rank, as {@code train-local} starts
 * it (torchrun's worker): rank, world size, master address and job secret come from the {@code
 * DANLU_*} environment; it picks the collective backend ({@code ddp_backend}: NCCL on local GPU
 * {@code DANLU_LOCAL_RANK}, or the TCP ring), joins it through the master rendezvous (which also
 * carries NCCL's unique id) and runs the pretraining recipe. {@code DANLU_STEP_DELAY_MS} slows
 * every step down (tests that kill a worker mid-run need a run that lasts).
 */
@Command(
    name = "worker",
    sortOptions = false,
    description = {
      "One training rank (started by train-local; reads DANLU_* rendezvous variables).",
      "As torchrun's worker: rank, world size, master"
          + " address and job secret come from the DANLU_RANK, DANLU_WORLD_SIZE,"
          + " DANLU_MASTER_ADDR, DANLU_MASTER_PORT and DANLU_JOB_SECRET environment variables."
          + " Errors are printed as [rank r] error: <message>.",
      ""
    })
public final class WorkerCli implements Callable<Integer> {
  /** This worker's index on its host (torchrun's LOCAL_RANK), set by train-local. */
  public static final String ENV_LOCAL_RANK = "DANLU_LOCAL_RANK";

  @Mixin private ConfigArgs configArgs;

  @Spec private CommandSpec spec;

  private final Map<String, String> env;
  private final PrintStream err;

  public WorkerCli() {
    this(System.getenv(), System.err);
  }

  /**
   * @param env the rendezvous variables
   * @param err where the rank's log and errors go
   */
  public WorkerCli(Map<String, String> env, PrintStream err) {
    this.env = env;
    this.err = err;
  }

  public static void main(String[] args) {
    System.exit(run(args));
  }

  public static int run(String[] args) {
    return run(args, System.getenv(), System.err);
  }

  static int run(String[] args, Map<String, String> env, PrintStream err) {
    return CliSupport.execute(new WorkerCli(env, err), args, System.out, err);
  }

  @Override
  public Integer call() {
    String config = configArgs.config().toString();
    List<String> overrides = configArgs.overrides();
    String prefix = "[rank " + env.getOrDefault(MasterRendezvous.ENV_RANK, "?") + "] ";
    try {
      ConfigLoader.Loaded loaded = ConfigLoader.load(Path.of(config), overrides);
      MasterRendezvous rdv = MasterRendezvous.fromEnv(env, 120_000);
      loaded
          .warnings()
          .forEach(
              w -> {
                if (rdv.rank() == 0) {
                  err.println(prefix + "warning: " + w);
                }
              });
      long delay = Long.parseLong(env.getOrDefault("DANLU_STEP_DELAY_MS", "0"));
      ProgressListener progress =
          (step, max, loss, tps, eta, secs) -> {
            if (delay > 0) {
              try {
                Thread.sleep(delay);
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            }
          };
      DdpBackend.Choice backend =
          chooseBackend(loaded.config().ddpBackend(), env, rdv.rank(), rdv.worldSize());
      if (rdv.rank() == 0) {
        err.println(prefix + backend.reason());
      }
      if (backend.kind().equals("nccl")) {
        // ND4J binds devices per thread; the recipe runs on this one
        Nd4j.getAffinityManager().unsafeSetDevice(backend.cudaDevice());
      }
      CommSpec spec =
          new CommSpec(
              backend.kind(),
              rdv.rank(),
              rdv.worldSize(),
              env.get(MasterRendezvous.ENV_MASTER_ADDR),
              rdv.secret(),
              backend.cudaDevice(),
              TcpRingOptions.defaults());
      try (Communicator comm = Communicators.create(spec, rdv)) {
        Recipes.forConfig(loaded.config())
            .run(
                new TrainContext(rdv.rank(), rdv.worldSize(), comm, loaded.config(), progress),
                err);
      }
      return 0;
    } catch (Exception e) {
      // the rank's own format (train-local shows these lines): no trace for the user's mistakes
      err.println(prefix + "error: " + CliSupport.describe(e));
      if (CliSupport.verbose(spec)
          || !(CliSupport.isUserError(e) || e instanceof IllegalStateException)) {
        e.printStackTrace(err);
      }
      return CliSupport.FAILED;
    }
  }

  /**
   * {@code ddp_backend} for this worker: its GPU is local device {@code DANLU_LOCAL_RANK} (set by
   * train-local; the global rank when absent, as train-local runs on one host), counted among the
   * devices CUDA shows this process ({@code CUDA_VISIBLE_DEVICES} applies).
   */
  static DdpBackend.Choice chooseBackend(
      String requested, Map<String, String> env, int rank, int world) {
    if ("tcp".equals(requested)) {
      return DdpBackend.choose(requested, false, OptionalInt.empty(), "");
    }
    boolean cuda = Backend.loaded() == Backend.Kind.CUDA;
    int visible = cuda ? Nd4j.getAffinityManager().getNumberOfDevices() : 0;
    int localRank = Integer.parseInt(env.getOrDefault(ENV_LOCAL_RANK, Integer.toString(rank)));
    return DdpBackend.choose(
        requested,
        cuda,
        DdpBackend.localDevice(localRank, world, visible),
        DdpBackend.noLocalDeviceWhy(world, visible, env.get("CUDA_VISIBLE_DEVICES")));
  }
}
