package dev.danlu.train.cli;

import dev.danlu.data.cli.CliSupport;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code --config <yaml> [key=value ...]}: the training config and its overrides, the same for
 * {@code train}, {@code train-local} and {@code worker} (a picocli mixin). Overrides are positional
 * {@code key=value} arguments; {@code --key=value} is refused with a hint to drop the dashes.
 */
public final class ConfigArgs {
  @Option(
      names = "--config",
      required = true,
      paramLabel = "<yaml>",
      description = "The training config (run_pt.sh key names, see conf/).")
  private Path config;

  @Parameters(
      paramLabel = CliSupport.OVERRIDE_LABEL,
      arity = "0..*",
      description =
          "Config overrides, e.g. learning_rate=1e-4 world_size=4 (after the file; the last"
              + " value of a key wins).")
  private List<String> overrides = new ArrayList<>();

  @Spec(Spec.Target.MIXEE)
  private CommandSpec mixee;

  public Path config() {
    return config;
  }

  /** The overrides, each checked to be {@code key=value} (a usage error otherwise). */
  public List<String> overrides() {
    return CliSupport.overrides(mixee, overrides);
  }
}
