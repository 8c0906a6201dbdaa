package dev.danlu.launch.eval;

import dev.danlu.data.cli.CliSupport;
import dev.danlu.train.eval.EvalModel;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;

/** What every {@code eval} subcommand loads: model, adapter, tokenizer, NTK scaling (a mixin). */
final class ModelOptions {
  @Option(
      names = "--model",
      required = true,
      paramLabel = "<hf dir>",
      description = "Hugging Face LLaMA directory (merged, or the base of --adapter).")
  Path model;

  @Option(names = "--adapter", paramLabel = "<peft dir>", description = "PEFT LoRA adapter.")
  Path adapter;

  @Option(
      names = "--ntk-alpha",
      paramLabel = "auto|<float>",
      description =
          "Rotary NTK scaling as the reference's patches (docs/long-context.md): a fixed alpha, or"
              + " auto (alpha from the sequence length beyond max_position_embeddings).")
  String ntkAlpha;

  @Option(
      names = "--tokenizer",
      paramLabel = "<tokenizer.model>",
      description = "Default: the adapter's tokenizer.model if it has one, else the model's.")
  Path tokenizer;

  /** The resolved spec; a bad --ntk-alpha is a usage error of {@code spec}'s command. */
  EvalModel resolve(CommandSpec spec) throws IOException {
    try {
      return EvalModel.resolve(model, adapter, tokenizer, ntkAlpha);
    } catch (IllegalArgumentException e) {
      throw CliSupport.usageError(spec, e.getMessage());
    }
  }
}
