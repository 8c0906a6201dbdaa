package dev.danlu.jobs.prep;

import dev.danlu.data.cli.CliSupport;
import java.io.PrintStream;
import picocli.CommandLine.Command;

/**
 * {@code danlu prep-pairs}: preference pairs ({@code {instruction, input, chosen, rejected}} or
 * LLaMA-Factory's {@code {instruction, input, output: [chosen, rejected]}}) → Alpaca-2 prompt +
 * each response, as two consecutive rows (chosen, rejected) of prep-sft's shard format
 * (docs/alignment.md). Options, report, reuse of unchanged files and bad-input rules are prep-sft's
 * (this class only names the command); a pair whose responses are identical is a bad record.
 */
@Command(
    name = "prep-pairs",
    sortOptions = false,
    description = {
      "Preference pairs ({instruction, input, chosen, rejected} or {instruction, input,"
          + " output: [chosen, rejected]}) -> Arrow shards for stage rm/dpo/ppo, on Spark.",
      "Bad records (identical responses included) stop the run naming file and record, nothing"
          + " committed, unless --skip-bad-records. Unchanged files are reused.",
      ""
    })
public final class PrepPairsCli extends PrepSftCli {
  public PrepPairsCli() {
    this(System.out);
  }

  public PrepPairsCli(PrintStream out) {
    super(out, true);
  }

  public static void main(String[] args) {
    System.exit(run(args));
  }

  public static int run(String[] args) {
    return run(args, System.out, System.err);
  }

  static int run(String[] args, PrintStream out, PrintStream err) {
    return CliSupport.execute(new PrepPairsCli(out), args, out, err);
  }

  /** The options of a command line, checked as {@code danlu prep-pairs} checks them. */
  static PrepSftJob.Options parse(String[] args) {
    PrepPairsCli cli = new PrepPairsCli();
    CliSupport.parse(cli, args);
    try {
      return cli.options();
    } catch (picocli.CommandLine.ParameterException e) {
      throw new IllegalArgumentException(e.getMessage(), e);
    }
  }
}
