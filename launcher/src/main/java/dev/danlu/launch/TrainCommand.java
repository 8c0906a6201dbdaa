package dev.danlu.launch;

import dev.danlu.launch.barrier.SlotCounter;
import dev.danlu.launch.barrier.TrainingFailedException;
import dev.danlu.launch.barrier.TrainingLauncher;
import dev.danlu.launch.preflight.Preflight;
import dev.danlu.launch.preflight.PreflightException;
import dev.danlu.train.config.ConfigLoader;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

/**
 * {@code danlu train --config <yaml> [key=value ...]}: checks the inputs on the driver, then runs
 * one barrier task per rank with driver-side retries. Works the same under {@code bin/danlu} (Spark
 * local mode unless {@code --master}) and under {@code spark-submit} (the master and resources come
 * from spark-submit).
 */
public final class TrainCommand {
  /**
   * The trainer's RankWork. It lives in the launcher module (the trainer must not see Spark or the
   * launcher), as a thin adapter from {@link RankContext} to the trainer's worker entry point.
   */
  public static final String DEFAULT_WORK_CLASS = "dev.danlu.launch.trainer.TrainerRankWork";

  static final String USAGE =
      "usage: danlu train --config <yaml> [key=value ...] [--master <url>] [--work-class <class>]\n"
          + "                   [--max-attempts N] [--slot-wait-seconds S]"
          + " [--progress-interval-seconds S]\n"
          + "  key=value       overrides a config key, e.g. learning_rate=1e-4 world_size=4\n"
          + "  --master        Spark master when not started by spark-submit (default local[W])\n"
          + "  --work-class    the RankWork each rank runs (default "
          + DEFAULT_WORK_CLASS
          + ";\n"
          + "                  dev.danlu.launch.smoke.RingSmokeWork checks a cluster without a"
          + " model)\n"
          + "  --max-attempts  runs of the training stage before giving up (default 3)\n";

  /** Parsed command line. */
  record Options(
      Path config,
      List<String> overrides,
      String master,
      String workClass,
      int maxAttempts,
      Duration slotWait,
      Duration progressInterval) {}

  private TrainCommand() {}

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
    Options o;
    try {
      o = parse(args);
    } catch (IllegalArgumentException e) {
      err.println("danlu train: " + e.getMessage() + "\n" + USAGE);
      return 2;
    }
    Preflight.Checked checked;
    try {
      checked = Preflight.checkInputs(o.config(), o.overrides(), o.workClass());
    } catch (PreflightException e) {
      err.println("danlu train: " + e.getMessage());
      return 2;
    }
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
    try {
      if (configured > 0) {
        Preflight.checkCluster(conf, configured);
      }
    } catch (PreflightException e) {
      err.println("danlu train: " + e.getMessage());
      return 2;
    }

    JavaSparkContext jsc = contextFactory.apply(conf);
    try {
      return train(jsc, conf, o, checked, configured, local, out, err);
    } finally {
      jsc.stop();
    }
  }

  private static int train(
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
      return 2;
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
      return 1;
    } catch (Exception e) {
      err.println("danlu train: " + e);
      return 1;
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

  static Options parse(String[] args) {
    Path config = null;
    List<String> overrides = new ArrayList<>();
    String master = null;
    String workClass = DEFAULT_WORK_CLASS;
    int maxAttempts = 3;
    Duration slotWait = Duration.ofSeconds(120);
    Duration interval = Duration.ofSeconds(10);
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--config" -> config = Path.of(value(args, ++i, a));
        case "--master" -> master = value(args, ++i, a);
        case "--work-class" -> workClass = value(args, ++i, a);
        case "--max-attempts" -> maxAttempts = positive(value(args, ++i, a), a);
        case "--slot-wait-seconds" ->
            slotWait = Duration.ofSeconds(positive(value(args, ++i, a), a));
        case "--progress-interval-seconds" ->
            interval = Duration.ofSeconds(positive(value(args, ++i, a), a));
        default -> {
          if (a.startsWith("--") || !a.contains("=")) {
            throw new IllegalArgumentException("unknown argument '" + a + "'");
          }
          overrides.add(a);
        }
      }
    }
    if (config == null) {
      throw new IllegalArgumentException("--config <yaml> is required");
    }
    return new Options(config, overrides, master, workClass, maxAttempts, slotWait, interval);
  }

  private static String value(String[] args, int i, String flag) {
    if (i >= args.length) {
      throw new IllegalArgumentException(flag + " needs a value");
    }
    return args[i];
  }

  private static int positive(String v, String flag) {
    try {
      int n = Integer.parseInt(v);
      if (n >= 1) {
        return n;
      }
    } catch (NumberFormatException ignored) {
      // reported below
    }
    throw new IllegalArgumentException(flag + " needs a whole number ≥ 1, got '" + v + "'");
  }
}
