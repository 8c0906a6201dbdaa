package dev.danlu.train.recipe;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import dev.danlu.data.shard.ShardMeta;
import dev.danlu.data.shard.ShardWriter;
import dev.danlu.train.config.ConfigLoader;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.RandomInit;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;

/**
 * Builds what a training test needs on disk: a randomly initialised Hugging Face LLaMA directory
 * written with the checkpoint writer, a shard dataset written with the shards writer (manifest
 * included), and configs bound by the real loader.
 */
final class TinyRun {
  static final String TOKENIZER_SHA = "ab".repeat(32);

  private TinyRun() {}

  /** 2 layers, GQA, untied, vocab 40. */
  static LlamaConfig tinyConfig() {
    return new LlamaConfig(16, 24, 2, 4, 2, 40, 1e-5, 10000.0, null, false, 64);
  }

  /** A randomly initialised Hugging Face LLaMA directory (no tokenizer), as the demo writes one. */
  static Path writeModel(Path dir, LlamaConfig c, long seed) throws IOException {
    RandomInit.writeHfDir(dir, c, seed, null);
    return dir;
  }

  /** Random blocks (ids in [3, vocab)) with a learnable pattern: every other token repeats. */
  static List<int[]> blocks(int n, int blockSize, int vocab, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    List<int[]> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int[] b = new int[blockSize];
      for (int t = 0; t < blockSize; t++) {
        b[t] = t % 2 == 1 ? b[t - 1] : 3 + r.nextInt(vocab - 3);
      }
      out.add(b);
    }
    return out;
  }

  /**
   * The recipe tests' standard dataset under {@code dir}: {@code trainRows} random train blocks
   * (seed 1) and {@code validationRows} validation blocks (seed 2) of 12 tokens over the tiny
   * model's 40-token vocabulary.
   */
  static Path writeTinyDataset(Path dir, int trainRows, int validationRows) throws IOException {
    return writeDataset(
        dir,
        blocks(trainRows, 12, 40, 1),
        blocks(validationRows, 12, 40, 2),
        12,
        40,
        TOKENIZER_SHA);
  }

  /** Writes a committed dataset with one train and one validation shard. */
  static Path writeDataset(
      Path root, List<int[]> train, List<int[]> validation, int blockSize, int vocab, String tokSha)
      throws IOException {
    Files.createDirectories(root.resolve(ManifestIo.SHARDS_DIR));
    List<Manifest.ShardEntry> entries = new ArrayList<>();
    entries.add(shard(root, "shards/train-00000.arrow", "train", train, blockSize, tokSha));
    entries.add(
        shard(root, "shards/validation-00000.arrow", "validation", validation, blockSize, tokSha));
    long tokens = (long) (train.size() + validation.size()) * blockSize;
    Manifest m =
        new Manifest(
            Manifest.FORMAT_VERSION,
            1,
            "2026-11-22T00:00:00Z",
            new Manifest.Params(
                tokSha,
                "tokenizer.model",
                vocab,
                1,
                2,
                blockSize,
                "group1000",
                0.1,
                "replace",
                1 << 20),
            new Manifest.Totals(
                1,
                0,
                tokens * 4,
                1,
                tokens,
                train.size() + validation.size(),
                train.size(),
                validation.size(),
                0,
                0,
                0),
            entries,
            List.of());
    Files.write(root.resolve(ManifestIo.CURRENT), ManifestIo.toJson(m));
    return root;
  }

  private static Manifest.ShardEntry shard(
      Path root, String rel, String split, List<int[]> rows, int blockSize, String tokSha)
      throws IOException {
    Path f = root.resolve(rel);
    try (BufferAllocator a = new RootAllocator();
        FileChannel ch =
            FileChannel.open(
                f,
                StandardOpenOption.CREATE,
                StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING);
        ShardWriter w =
            new ShardWriter(a, new ShardMeta(blockSize, tokSha, 1, 2, 7, Map.of()), ch)) {
      for (int[] b : rows) {
        w.write(b);
      }
    }
    byte[] bytes = Files.readAllBytes(f);
    try {
      String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
      return new Manifest.ShardEntry(
          rel, split, rows.size(), bytes.length, sha, "file:/test/" + split);
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The test config: tiny LoRA, no eval unless asked; {@code extra} are key=value overrides. */
  static TrainConfig config(Path model, Path data, Path out, String... extra) {
    List<String> o = new ArrayList<>();
    o.add("model_name_or_path=" + model);
    o.add("dataset_dir=" + data);
    o.add("output_dir=" + out);
    o.addAll(List.of(extra));
    return ConfigLoader.load(yaml(), "tiny-test.yaml", o).config();
  }

  static String yaml() {
    return String.join(
        "\n",
        "seed: 7",
        "max_steps: 10",
        "per_device_train_batch_size: 1",
        "gradient_accumulation_steps: 1",
        "learning_rate: 1.0e-2",
        "lr_scheduler_type: cosine",
        "warmup_ratio: 0.2",
        "weight_decay: 0.01",
        "max_grad_norm: 1.0",
        "lora_rank: 4",
        "lora_alpha: 8",
        "lora_dropout: 0.1",
        "trainable: q_proj,v_proj,k_proj,o_proj,gate_proj,down_proj,up_proj",
        "modules_to_save: embed_tokens,lm_head",
        "logging_steps: 5",
        "save_steps: 1000",
        "save_total_limit: 2",
        "eval_steps: 0",
        "ddp_backend: tcp",
        "");
  }
}
