package dev.danlu.train.recipe;

import dev.danlu.train.config.ConfigLoader;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** Public entry points to the recipe test helpers for tests in other packages (the CLI tests). */
public final class RecipeTestSupport {
  private RecipeTestSupport() {}

  public static Path model(Path dir) throws Exception {
    return TinyRun.writeModel(dir, TinyRun.tinyConfig(), 11);
  }

  public static Path dataset(Path dir) throws Exception {
    return TinyRun.writeDataset(
        dir,
        TinyRun.blocks(60, 12, 40, 1),
        TinyRun.blocks(4, 12, 40, 2),
        12,
        40,
        TinyRun.TOKENIZER_SHA);
  }

  /** The tiny test config without max_steps, save_steps and gradient_accumulation_steps. */
  /** A dataset of given blocks, as the shards writer and a manifest make it. */
  public static Path dataset(
      Path dir, List<int[]> train, List<int[]> validation, int block, int vocab, String tokSha)
      throws Exception {
    return TinyRun.writeDataset(dir, train, validation, block, vocab, tokSha);
  }

  /**
   * Trains {@code cfg} with one rank thread per communicator in {@code comms} (e.g. a TCP ring, as
   * executors join one), closing them at the end; returns the ranks' log.
   */
  public static String train(
      java.util.List<? extends dev.danlu.train.comm.Communicator> comms,
      dev.danlu.train.config.TrainConfig cfg)
      throws Exception {
    return Ranks.run(comms, cfg, null, TrainLoop.NO_HOOK);
  }

  /**
   * Trains {@code cfg} (its stage's recipe) on {@code n} in-process ranks, {@code progress} seeing
   * every step (it may throw to simulate a crash); returns the ranks' log.
   */
  public static String train(
      int n, dev.danlu.train.config.TrainConfig cfg, ProgressListener progress) throws Exception {
    return Ranks.run(n, cfg, progress);
  }

  public static String yaml() {
    StringBuilder sb = new StringBuilder();
    for (String line : TinyRun.yaml().split("\n")) {
      if (!line.startsWith("max_steps")
          && !line.startsWith("save_steps")
          && !line.startsWith("gradient_accumulation_steps")) {
        sb.append(line).append('\n');
      }
    }
    return sb.toString();
  }

  /** Trains {@code yaml} on {@code n} in-process ranks into {@code out}; the final adapter. */
  public static Map<String, float[]> trainInProcess(int n, Path yaml, Path out) throws Exception {
    var cfg = ConfigLoader.load(yaml, List.of("output_dir=" + out)).config();
    Ranks.run(n, cfg);
    return Ranks.tensors(out.resolve("pt_lora_model/adapter_model.safetensors"));
  }

  public static Map<String, float[]> tensors(Path file) {
    return Ranks.tensors(file);
  }
}
