package dev.danlu.data.cli;

import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import picocli.CommandLine;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParseResult;
import picocli.CommandLine.TypeConversionException;
import picocli.CommandLine.UnmatchedArgumentException;

/**
 * What every {@code danlu} subcommand shares on top of picocli, so they all behave alike:
 *
 * <ul>
 *   <li>{@code -h/--help}: the generated usage on stdout, exit 0;
 *   <li>a command-line mistake (unknown option, missing required option, missing or bad value, a
 *       stray argument): one line {@code danlu <sub>: <what, naming the flag>} on stderr, then the
 *       usage line and where to find the rest, exit {@link #USAGE} (2);
 *   <li>a failure the user can fix ({@link UserError}, {@link IOException}, {@link
 *       IllegalArgumentException}): one line {@code danlu <sub>: <message>} on stderr, exit {@link
 *       #FAILED} (1), the stack trace only with {@code --verbose} or {@code DANLU_VERBOSE=1};
 *   <li>anything else is a bug: the same line, and the stack trace;
 *   <li>an option's value is always the next argument, even when it starts with '-' ({@code
 *       --prompt "-x"}), and a repeated option keeps its last value;
 *   <li>config overrides are positional {@code key=value} arguments; {@code --key=value} is refused
 *       with a message saying to drop the dashes.
 * </ul>
 */
public final class CliSupport {
  /** Exit code: done. */
  public static final int OK = 0;

  /** Exit code: the command ran and failed, or refused its inputs (message on stderr). */
  public static final int FAILED = 1;

  /** Exit code: the command line is wrong (message and usage on stderr); nothing was done. */
  public static final int USAGE = 2;

  /** Prints stack traces of failures; accepted by every subcommand and by {@code danlu} itself. */
  public static final String VERBOSE_OPTION = "--verbose";

  /** {@code DANLU_VERBOSE=1} in the environment: as {@code --verbose}. */
  public static final String VERBOSE_ENV = "DANLU_VERBOSE";

  /** The label of positional config overrides; the usage shows it and error hints look for it. */
  public static final String OVERRIDE_LABEL = "key=value";

  /** Room for the option column of the usage: {@code --progress-interval-seconds=<s>} fits. */
  static final int OPTIONS_COLUMN = 34;

  /** Columns of the usage text. */
  static final int USAGE_WIDTH = 100;

  private CliSupport() {}

  /**
   * Runs one subcommand on its own (tests, {@code main} methods, one subcommand calling another):
   * the command is named {@code danlu <name>} in its usage and messages.
   *
   * @param command an instance of a class annotated with {@code @Command(name = ...)}
   * @return the exit code
   */
  public static int execute(Object command, String[] args, PrintStream out, PrintStream err) {
    CommandLine cl = new CommandLine(command);
    cl.setCommandName("danlu " + cl.getCommandName());
    return configure(cl, out, err).execute(args);
  }

  /**
   * Gives {@code cl} and every subcommand added to it so far the shared behaviour: {@code
   * -h/--help} and {@code --verbose} options, the error handlers, and {@code out}/{@code err} for
   * usage and messages.
   */
  public static CommandLine configure(CommandLine cl, PrintStream out, PrintStream err) {
    addCommonOptions(cl, Collections.newSetFromMap(new IdentityHashMap<>()));
    cl.setOut(writer(out));
    cl.setErr(writer(err));
    cl.setAllowOptionsAsOptionParameters(true);
    cl.setOverwrittenOptionsAllowed(true);
    cl.setExpandAtFiles(false); // "--prompt @notes" is text, not the contents of a file "notes"
    cl.setUsageHelpWidth(USAGE_WIDTH);
    cl.setUsageHelpLongOptionsMaxWidth(OPTIONS_COLUMN);
    cl.setParameterExceptionHandler(CliSupport::usageError);
    cl.setExecutionExceptionHandler(CliSupport::failure);
    return cl;
  }

  /**
   * Parses {@code args} into {@code command}'s options with the same rules as {@link #execute}, for
   * code that takes a subcommand's arguments without running it.
   *
   * @throws IllegalArgumentException with picocli's message, naming the flag
   */
  public static CommandLine parse(Object command, String... args) {
    CommandLine cl = new CommandLine(command);
    cl.setAllowOptionsAsOptionParameters(true);
    cl.setOverwrittenOptionsAllowed(true);
    try {
      cl.parseArgs(args);
    } catch (ParameterException e) {
      throw new IllegalArgumentException(e.getMessage(), e);
    }
    return cl;
  }

  /**
   * A command-line mistake found after parsing (a combination of options, a value the type could
   * not check): thrown from a command's {@code call()}, it is reported like a parse error, exit 2.
   */
  public static ParameterException usageError(CommandSpec spec, String message) {
    return new ParameterException(spec.commandLine(), message);
  }

  /**
   * Checks positional config overrides: each must be {@code key=value} with a non-empty key that
   * does not start with '-'.
   *
   * @throws ParameterException naming the first bad one (exit 2)
   */
  public static List<String> overrides(CommandSpec spec, List<String> args) {
    for (String a : args) {
      int eq = a.indexOf('=');
      if (a.startsWith("-")) {
        throw usageError(spec, notAnOverride(a));
      }
      if (eq <= 0) {
        throw usageError(
            spec,
            "'" + a + "' is not a config override: expected key=value, e.g. learning_rate=1e-4");
      }
    }
    return List.copyOf(args);
  }

  private static String notAnOverride(String arg) {
    String bare = arg.replaceFirst("^-+", "");
    return "'"
        + arg
        + "': config overrides are written "
        + OVERRIDE_LABEL
        + " without dashes"
        + (bare.contains("=") ? ", e.g. " + bare : "");
  }

  /** True when {@code --verbose} was given to this command or a parent, or DANLU_VERBOSE is set. */
  public static boolean verbose(CommandSpec spec) {
    return verbose(spec, System.getenv());
  }

  static boolean verbose(CommandSpec spec, Map<String, String> env) {
    String v = env.getOrDefault(VERBOSE_ENV, "").trim().toLowerCase(Locale.ROOT);
    if (v.equals("1") || v.equals("true") || v.equals("yes")) {
      return true;
    }
    for (CommandSpec s = spec; s != null; s = s.parent()) {
      ParseResult pr = s.commandLine() == null ? null : s.commandLine().getParseResult();
      if (pr != null && pr.hasMatchedOption(VERBOSE_OPTION)) {
        return true;
      }
    }
    return false;
  }

  /** True for the failures a user causes and fixes: reported without a stack trace. */
  public static boolean isUserError(Throwable t) {
    return t instanceof UserError
        || t instanceof IOException
        || t instanceof UncheckedIOException
        || t instanceof IllegalArgumentException;
  }

  /** The one-line description of a failure: its message, made clear for bare file exceptions. */
  public static String describe(Throwable t) {
    if (t instanceof UncheckedIOException u && u.getCause() != null) {
      String outer = u.getMessage();
      String inner = describe(u.getCause());
      return outer == null || outer.equals(u.getCause().toString()) ? inner : outer + ": " + inner;
    }
    if (t instanceof NoSuchFileException e && e.getReason() == null) {
      return e.getFile() + ": no such file or directory";
    }
    if (t instanceof AccessDeniedException e && e.getReason() == null) {
      return e.getFile() + ": permission denied";
    }
    if (t instanceof FileAlreadyExistsException e && e.getReason() == null) {
      return e.getFile() + ": already exists";
    }
    if (t instanceof NotDirectoryException e && e.getReason() == null) {
      return e.getFile() + ": not a directory";
    }
    String m = t.getMessage();
    return m == null || m.isBlank() ? t.toString() : m;
  }

  // ---- handlers ----

  private static int usageError(ParameterException ex, String[] args) {
    CommandLine cl = ex.getCommandLine();
    PrintWriter err = cl.getErr();
    List<String> unmatched = cl.getUnmatchedArguments();
    ParameterException shown = ex;
    if (!(ex instanceof UnmatchedArgumentException) && !unmatched.isEmpty()) {
      // picocli checks required options before unknown ones; the unknown one is the real mistake
      shown = new UnmatchedArgumentException(cl, new ArrayList<>(unmatched));
    }
    String message = shown.getMessage();
    if (shown instanceof UnmatchedArgumentException u) {
      String first = u.getUnmatched().isEmpty() ? "" : u.getUnmatched().get(0);
      if (!cl.getSubcommands().isEmpty() && !first.isEmpty() && !first.startsWith("-")) {
        message = "unknown subcommand '" + first + "'";
      } else if (first.startsWith("-") && first.contains("=") && takesOverrides(cl)) {
        message += " (" + notAnOverride(first) + ")";
      }
    }
    err.println(cl.getCommandSpec().qualifiedName() + ": " + message);
    if (shown instanceof UnmatchedArgumentException u) {
      UnmatchedArgumentException.printSuggestions(u, err);
    }
    if (!cl.getSubcommands().isEmpty()) {
      cl.usage(err); // the list of subcommands is what a mistyped one needs
    } else {
      // the synopsis, not the whole help: the error stays in sight on a terminal
      CommandLine.Help help = cl.getHelp();
      err.print(help.synopsisHeading() + help.synopsis(help.synopsisHeadingLength()));
      err.println("Run '" + cl.getCommandSpec().qualifiedName() + " --help' for all options.");
    }
    err.flush();
    return USAGE;
  }

  /**
   * The user error behind {@code t}: {@code t} itself, or one in its cause chain when {@code t}
   * only wraps it (Spark reports an executor's IOException inside a SparkException); else null.
   */
  static Throwable userCause(Throwable t) {
    for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
      if (isUserError(c)) {
        return c;
      }
    }
    return null;
  }

  private static int failure(Exception ex, CommandLine cl, ParseResult parseResult) {
    PrintWriter err = cl.getErr();
    String name = cl.getCommandSpec().qualifiedName();
    Throwable user = userCause(ex);
    if (user != null) {
      err.println(name + ": " + describe(user));
      if (verbose(cl.getCommandSpec())) {
        ex.printStackTrace(err);
      }
    } else {
      err.println(name + ": unexpected error (a bug in danlu?): " + ex);
      ex.printStackTrace(err);
    }
    err.flush();
    return FAILED;
  }

  private static boolean takesOverrides(CommandLine cl) {
    return cl.getCommandSpec().positionalParameters().stream()
        .anyMatch(p -> OVERRIDE_LABEL.equals(p.paramLabel()));
  }

  private static void addCommonOptions(CommandLine cl, Set<CommandSpec> done) {
    CommandSpec spec = cl.getCommandSpec();
    if (!done.add(spec)) {
      return;
    }
    if (spec.findOption("--help") == null) {
      spec.addOption(
          OptionSpec.builder("-h", "--help")
              .usageHelp(true)
              .type(boolean.class)
              .description("Print this help and exit.")
              .build());
    }
    if (spec.findOption(VERBOSE_OPTION) == null) {
      spec.addOption(
          OptionSpec.builder(VERBOSE_OPTION)
              .type(boolean.class)
              .description(
                  "On a failure, print the stack trace too (or set " + VERBOSE_ENV + "=1).")
              .build());
    }
    for (CommandLine sub : cl.getSubcommands().values()) {
      addCommonOptions(sub, done);
    }
  }

  private static PrintWriter writer(PrintStream s) {
    return new PrintWriter(new OutputStreamWriter(s, StandardCharsets.UTF_8), true);
  }

  // ---- converters: a bad value is a usage error naming the option ----

  /** A whole number ≥ 1. */
  public static final class PositiveInt implements ITypeConverter<Integer> {
    @Override
    public Integer convert(String v) {
      try {
        int n = Integer.parseInt(v.trim());
        if (n >= 1) {
          return n;
        }
      } catch (NumberFormatException e) {
        // reported below
      }
      throw new TypeConversionException("'" + v + "' is not a whole number ≥ 1");
    }
  }

  /** A whole number ≥ 0. */
  public static final class NonNegativeInt implements ITypeConverter<Integer> {
    @Override
    public Integer convert(String v) {
      try {
        int n = Integer.parseInt(v.trim());
        if (n >= 0) {
          return n;
        }
      } catch (NumberFormatException e) {
        // reported below
      }
      throw new TypeConversionException("'" + v + "' is not a whole number ≥ 0");
    }
  }

  /** A whole number ≥ 1 (long). */
  public static final class PositiveLong implements ITypeConverter<Long> {
    @Override
    public Long convert(String v) {
      try {
        long n = Long.parseLong(v.trim());
        if (n >= 1) {
          return n;
        }
      } catch (NumberFormatException e) {
        // reported below
      }
      throw new TypeConversionException("'" + v + "' is not a whole number ≥ 1");
    }
  }

  /** A number &gt; 0, fractions allowed. */
  public static final class PositiveNumber implements ITypeConverter<Double> {
    @Override
    public Double convert(String v) {
      double d = number(v);
      if (!(d > 0) || Double.isInfinite(d)) {
        throw new TypeConversionException("'" + v + "' is not a positive number");
      }
      return d;
    }
  }

  /** Any finite number. */
  public static final class FiniteNumber implements ITypeConverter<Double> {
    @Override
    public Double convert(String v) {
      return number(v);
    }
  }

  private static double number(String v) {
    try {
      double d = Double.parseDouble(v.trim());
      if (Double.isFinite(d)) {
        return d;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new TypeConversionException("'" + v + "' is not a number");
  }
}
