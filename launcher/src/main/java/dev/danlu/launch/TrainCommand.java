package dev.danlu.launch;

import dev.danlu.data.cli.CliSupport;
import dev.danlu.launch.barrier.SlotCounter;
import dev.danlu.launch.barrier.TrainingFailedException;
import dev.danlu.launch.barrier.TrainingLauncher;
import dev.danlu.launch.preflight.Preflight;
import dev.danlu.launch.preflight.PreflightException;
import dev.danlu.train.cli.ConfigArgs;
import dev.danlu.train.config.ConfigLoader;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.Function;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code danlu train --config <yaml> [key=value ...]}: checks the inputs on the driver, then runs
 * one barrier task per rank with driver-side retries. Works the same under {@code bin/danlu} (Spark
 * local mode unless {@code --master}) and under {@code spark-submit} (the master and resources come
 * from spark-submit). Exit codes: 0 trained, 1 the inputs were refused (nothing was submitted) or
 * training failed, 2 a command-line mistake.
 */
@Command(
    name = "train",
    sortOptions = false,
    description = {
      "Train on Spark: one barrier task per rank, retried by the driver.",
      "The config, model, dataset and work class are checked on the driver before any Spark job;"
          + " under spark-submit the master and resources come from spark-submit.",
      ""
    })
public final class TrainCommand implements Callable<Integer> {
  /**
   * The trainer's RankWork. It lives in the launcher module (the trainer must not see Spark or the
   * launcher), as a thin adapter from {@link RankContext} to the trainer's worker entry point.
   */
  public static final String DEFAULT_WORK_CLASS = "dev.danlu.launch.trainer.TrainerRankWork";

  @Mixin private ConfigArgs configArgs;

  @Option(
      names = "--master",
      paramLabel = "<url>",
      description =
          "Spark master when not started by spark-submit (default local[W], W = world_size).")
  private String master;

  @Option(
      names = "--work-class",
      paramLabel = "<class>",
      description =
          "The RankWork each rank runs (default "
              + DEFAULT_WORK_CLASS
              + "; dev.danlu.launch.smoke.RingSmokeWork checks a cluster without a model).")
  private String workClass = DEFAULT_WORK_CLASS;

  @Option(
      names = "--max-attempts",
      paramLabel = "<n>",
      converter = CliSupport.PositiveInt.class,
      description = "Runs of the training stage before giving up (default 3).")
  private int maxAttempts = 3;

  @Option(
      names = "--slot-wait-seconds",
      paramLabel = "<s>",
      converter = CliSupport.PositiveInt.class,
      description =
          "How long to wait for enough barrier slots before each attempt (default 120; a"
              + " cluster only).")
  private int slotWaitSeconds = 120;

  @Option(
      names = "--progress-interval-seconds",
      paramLabel = "<s>",
      converter = CliSupport.PositiveInt.class,
      description = "Period of the console progress line (default 10).")
  private int progressIntervalSeconds = 10;

  @Spec private CommandSpec spec;

  private final PrintStream out;
  private final PrintStream err;
  private final Function<SparkConf, JavaSparkContext> contextFactory;

  /** Parsed command line. */
  record Options(
      Path config,
      List<String> overrides,
      String master,
      String workClass,
      int maxAttempts,
      Duration slotWait,
      Duration progressInterval) {}

  public TrainCommand() {
    this(System.out, System.err, JavaSparkContext::new);
  }

  /**
   * @param contextFactory makes the Spark context from the checked configuration; called only after
   *     every input check passed
   */
  TrainCommand(
      PrintStream out, PrintStream err, Function<SparkConf, JavaSparkContext> contextFactory) {
    this.out = out;
    this.err = err;
    this.contextFactory = contextFactory;
  }

  public static int run(String[] args) {
    return run(args, System.out, System.err, JavaSparkContext::new);
  }

  /**
   * @param contextFactory makes the Spark context from the checked configuration; called only after
   *     every input check passed
   */
  static int run(
      String[] args,
      PrintStream out,
      PrintStream err,
      Function<SparkConf, JavaSparkContext> contextFactory) {
    return CliSupport.execute(new TrainCommand(out, err, contextFactory), args, out, err);
  }

  /**
   * Checks the inputs, then trains. A {@link PreflightException} (bad config, model, dataset, work
   * class, too few slots) is reported as one message with exit code 1: nothing was submitted.
   */
  @Override
  public Integer call() {
    Options o =
        new Options(
            configArgs.config(),
            configArgs.overrides(),
            master,
            workClass,
            maxAttempts,
            Duration.ofSeconds(slotWaitSeconds),
            Duration.ofSeconds(progressIntervalSeconds));
    Preflight.Checked checked = Preflight.checkInputs(o.config(), o.overrides(), o.workClass());
    checked.warnings().forEach(w -> err.println("danlu train: warning: " + w));
    out.println("danlu train: effective config\n" + ConfigLoader.toYaml(checked.config()));

    int configured = checked.config().worldSize();
    SparkConf conf = new SparkConf();
    if (o.master() != null) {
      conf.setMaster(o.master());
    }
    conf.setIfMissing("spark.master", configured > 0 ? "local[" + configured + "]" : "local[2]");
    conf.setIfMissing("spark.app.name", "danlu train " + o.config().getFileName());
    boolean local = conf.get("spark.master").startsWith("local");
    if (configured > 0) {
      Preflight.checkCluster(conf, configured);
    }

    JavaSparkContext jsc = contextFactory.apply(conf);
    try {
      return train(jsc, conf, o, checked, configured, local, out, err);
    } finally {
      jsc.stop();
    }
  }

  private int train(
      JavaSparkContext jsc,
      SparkConf conf,
      Options o,
      Preflight.Checked checked,
      int configured,
      boolean local,
      PrintStream out,
      PrintStream err) {
    int worldSize = configured > 0 ? configured : worldSizeFromCluster(jsc, conf, err);
    if (local && SlotCounter.slots(jsc.sc()) < worldSize) {
      // Local mode never gains slots: do not wait for them.
      err.println("danlu train: " + SlotCounter.notEnough(jsc.sc(), worldSize));
      return CliSupport.FAILED;
    }
    TrainingLauncher.Plan plan =
        new TrainingLauncher.Plan(
            o.workClass(),
            worldSize,
            o.maxAttempts(),
            checked.yaml(),
            checked.source(),
            o.overrides(),
            local ? Duration.ZERO : o.slotWait(),
            o.progressInterval());
    try (TrainingLauncher launcher = new TrainingLauncher(jsc, plan, out)) {
      out.println(
          "danlu train: "
              + worldSize
              + " ranks on "
              + conf.get("spark.master")
              + "; Spark UI "
              + (jsc.sc().uiWebUrl().isDefined() ? jsc.sc().uiWebUrl().get() + "/training/" : "off")
              + "; progress endpoint "
              + launcher.progressUrl());
      TrainingLauncher.Result result = launcher.run();
      result.rankSummaries().forEach(s -> out.println("danlu train: " + s));
      out.println("danlu train: output in " + checked.config().outputDir());
      return 0;
    } catch (TrainingFailedException e) {
      err.println("danlu train: " + e.getMessage());
      if (CliSupport.verbose(spec)) {
        e.printStackTrace(err);
      }
      return CliSupport.FAILED;
    } catch (Exception e) {
      err.println("danlu train: " + e);
      if (CliSupport.verbose(spec)) {
        e.printStackTrace(err);
      }
      return CliSupport.FAILED;
    }
  }

  /**
   * world_size 0: the slots the submission asked for (executors × tasks per executor) when it says,
   * else the slots registered now (local mode: all of them at once).
   */
  private static int worldSizeFromCluster(JavaSparkContext jsc, SparkConf conf, PrintStream err) {
    int promised = SlotCounter.promisedSlots(conf);
    int w = promised > 0 ? promised : SlotCounter.slots(jsc.sc());
    err.println(
        "danlu train: world_size 0: using "
            + w
            + " ranks ("
            + (promised > 0 ? "spark.executor.instances × tasks per executor" : "slots now")
            + ")");
    return Math.max(1, w);
  }
}
