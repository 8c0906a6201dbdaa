package dev.danlu.launch;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The one entry point: {@code bin/danlu <subcommand>} and {@code spark-submit --class
 * dev.danlu.launch.Main <danlu jar> <subcommand>} both land here.
 */
public final class Main {
  /** A subcommand's entry point; it returns the process exit code. */
  @FunctionalInterface
  public interface Command {
    int run(String[] args) throws Exception;
  }

  private static final Map<String, String> HELP = new LinkedHashMap<>();
  private static final Map<String, Command> COMMANDS = new LinkedHashMap<>();

  static void register(String name, String help, Command command) {
    HELP.put(name, help);
    COMMANDS.put(name, command);
  }

  private Main() {}

  public static void main(String[] args) throws Exception {
    System.exit(run(args));
  }

  /** Runs a subcommand and returns its exit code (tests call this instead of main). */
  public static int run(String[] args) throws Exception {
    Commands.registerAll();
    if (args.length == 0 || args[0].equals("-h") || args[0].equals("--help")) {
      usage();
      return args.length == 0 ? 2 : 0;
    }
    Command command = COMMANDS.get(args[0]);
    if (command == null) {
      System.err.println("danlu: unknown subcommand '" + args[0] + "'");
      usage();
      return 2;
    }
    return command.run(Arrays.copyOfRange(args, 1, args.length));
  }

  private static void usage() {
    System.err.println("usage: danlu <subcommand> [options]\n\nsubcommands:");
    HELP.forEach((name, help) -> System.err.printf("  %-12s %s%n", name, help));
  }
}
