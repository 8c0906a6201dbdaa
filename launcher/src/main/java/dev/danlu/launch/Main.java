package dev.danlu.launch;

import java.io.PrintStream;
import picocli.CommandLine.Command;

/**
 * The one entry point: {@code bin/danlu <subcommand>} and {@code spark-submit --class
 * dev.danlu.launch.Main <danlu jar> <subcommand>} both land here. The top-level {@code danlu}
 * command; its subcommands are listed in {@link Commands}.
 */
@Command(
    name = "danlu",
    synopsisSubcommandLabel = "<subcommand>",
    description = "Distributed LLaMA-2 LoRA training on Apache Spark.",
    commandListHeading = "%nSubcommands:%n",
    footer = {
      "",
      "Run 'danlu <subcommand> --help' for its options. Config overrides are written key=value"
          + " (no dashes).",
      "Exit codes: 0 done; 1 failed or refused its inputs (one line on stderr, the stack trace"
          + " with --verbose or DANLU_VERBOSE=1); 2 command-line mistake (message and usage on"
          + " stderr)."
    })
public final class Main {
  Main() {}

  public static void main(String[] args) {
    System.exit(run(args));
  }

  /** Runs a subcommand and returns its exit code (tests call this instead of main). */
  public static int run(String[] args) {
    return run(args, System.out, System.err);
  }

  /** As {@link #run(String[])} with the subcommands' stdout and stderr given (tests). */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    return Commands.commandLine(out, err).execute(args);
  }
}
