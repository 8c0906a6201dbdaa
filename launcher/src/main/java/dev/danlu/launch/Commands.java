package dev.danlu.launch;

import dev.danlu.data.cli.CliSupport;
import dev.danlu.data.tokenizer.TokenizeCli;
import dev.danlu.jobs.prep.PrepCli;
import dev.danlu.jobs.prep.PrepPairsCli;
import dev.danlu.jobs.prep.PrepSftCli;
import dev.danlu.jobs.vocab.VocabCli;
import dev.danlu.launch.eval.EvalCommand;
import dev.danlu.launch.eval.McCommand;
import dev.danlu.launch.eval.PplCommand;
import dev.danlu.launch.eval.SparkRunner;
import dev.danlu.train.checkpoint.MergeCli;
import dev.danlu.train.cli.GenerateCli;
import dev.danlu.train.cli.ScoreCli;
import dev.danlu.train.cli.TrainLocalCli;
import dev.danlu.train.cli.WorkerCli;
import dev.danlu.train.export.ExportGgufCli;
import dev.danlu.train.export.InspectCli;
import dev.danlu.train.serve.ServeCli;
import java.io.PrintStream;
import java.util.Map;
import java.util.concurrent.Callable;
import org.apache.spark.api.java.JavaSparkContext;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The table of subcommands; each module's CLI class is wired in here, in help order. */
final class Commands {
  private Commands() {}

  /** The {@code danlu} command with every subcommand, printing to {@code out} and {@code err}. */
  static CommandLine commandLine(PrintStream out, PrintStream err) {
    CommandLine danlu = new CommandLine(new Main());
    danlu.addSubcommand(new Version(out));
    danlu.addSubcommand(new TokenizeCli(System.in, out, err));
    danlu.addSubcommand(new PrepCli(out));
    danlu.addSubcommand(new PrepSftCli(out));
    danlu.addSubcommand(new PrepPairsCli(out));
    danlu.addSubcommand(new TrainCommand(out, err, JavaSparkContext::new));
    danlu.addSubcommand(new TrainLocalCli(Map.of(), err));
    danlu.addSubcommand(new WorkerCli(System.getenv(), err));
    danlu.addSubcommand(new GenerateCli(out, err));
    danlu.addSubcommand(new ScoreCli(out, err));
    danlu.addSubcommand(new ServeCli(err));
    danlu.addSubcommand(new MergeCli(out));
    danlu.addSubcommand(new dev.danlu.train.cli.InjectCli(out, err));
    danlu.addSubcommand(new ExportGgufCli(out));
    danlu.addSubcommand(new InspectCli(out));
    danlu.addSubcommand(
        new CommandLine(new EvalCommand())
            .addSubcommand(new PplCommand(out, err, SparkRunner.SESSION))
            .addSubcommand(new McCommand(out, err, SparkRunner.SESSION)));
    danlu.addSubcommand(VocabCli.commandLine(out));
    danlu.addSubcommand(new DemoCommand(out));
    return CliSupport.configure(danlu, out, err);
  }

  /** {@code danlu version}. */
  @Command(name = "version", description = "Print the danlu version.")
  static final class Version implements Callable<Integer> {
    private final PrintStream out;

    Version(PrintStream out) {
      this.out = out;
    }

    @Override
    public Integer call() {
      String v = Main.class.getPackage().getImplementationVersion();
      out.println("danlu " + (v == null ? "dev" : v));
      return CliSupport.OK;
    }
  }
}
