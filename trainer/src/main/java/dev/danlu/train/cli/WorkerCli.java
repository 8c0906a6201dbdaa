package dev.danlu.train.cli;

import dev.danlu.train.comm.CommSpec;
import dev.danlu.train.comm.Communicator;
import dev.danlu.train.comm.Communicators;
import dev.danlu.train.comm.MasterRendezvous;
import dev.danlu.train.comm.TcpRingOptions;
import dev.danlu.train.config.ConfigLoader;
import dev.danlu.train.recipe.PretrainRecipe;
import dev.danlu.train.recipe.ProgressListener;
import dev.danlu.train.recipe.TrainContext;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code danlu worker --config Y [key=value ...]}: one training rank, as {@code train-local} starts
 * it (torchrun's worker): rank, world size, master address and job secret come from the {@code
 * DANLU_*} environment; it joins the TCP ring through the master rendezvous and runs the
 * pretraining recipe. {@code DANLU_STEP_DELAY_MS} slows every step down (tests that kill a worker
 * mid-run need a run that lasts).
 */
public final class WorkerCli {
  private WorkerCli() {}

  public static void main(String[] args) {
    System.exit(run(args));
  }

  public static int run(String[] args) {
    return run(args, System.getenv(), System.err);
  }

  static int run(String[] args, Map<String, String> env, PrintStream err) {
    String config = null;
    List<String> overrides = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--config") && i + 1 < args.length) {
        config = args[++i];
      } else if (args[i].contains("=")) {
        overrides.add(args[i]);
      } else {
        err.println(
            "usage: danlu worker --config <yaml> [key=value ...] (unknown: " + args[i] + ")");
        return 2;
      }
    }
    if (config == null) {
      err.println("usage: danlu worker --config <yaml> [key=value ...]");
      return 2;
    }
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
      CommSpec spec =
          new CommSpec(
              "tcp",
              rdv.rank(),
              rdv.worldSize(),
              env.get(MasterRendezvous.ENV_MASTER_ADDR),
              rdv.secret(),
              0,
              TcpRingOptions.defaults());
      try (Communicator comm = Communicators.create(spec, rdv)) {
        new PretrainRecipe(err)
            .run(new TrainContext(rdv.rank(), rdv.worldSize(), comm, loaded.config(), progress));
      }
      return 0;
    } catch (Exception e) {
      err.println(prefix + "error: " + e.getMessage());
      if (!(e instanceof IllegalArgumentException || e instanceof IllegalStateException)) {
        e.printStackTrace(err);
      }
      return 1;
    }
  }
}
