package dev.danlu.launch;

import dev.danlu.data.shard.ShardWriter;
import dev.danlu.data.tokenizer.SentencePieceTokenizer;
import dev.danlu.train.comm.RankThreads;
import dev.danlu.train.comm.TcpRingOptions;
import dev.danlu.train.config.ConfigLoader;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.RandomInit;
import dev.danlu.train.recipe.RecipeTestSupport;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A real (tiny) training setup on disk for launcher tests: a randomly initialised LLaMA in a
 * Hugging Face directory ({@link RandomInit}) with the stories260K 512-piece tokenizer, a committed
 * shard dataset of text encoded with that tokenizer (written by the data-prep {@link ShardWriter}
 * plus a manifest, as {@code danlu prep} commits one), and a YAML config; plus the uninterrupted
 * reference run of the same config in this JVM (2 rank threads on the same TCP ring the executors
 * use).
 */
final class TinyLlamaRun {
  static final int BLOCK = 32;
  private static final String[] WORDS = {
    "the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "park", "with", "little",
    "girl", "who", "saw", "big", "red", "ball", "under", "tree", "happy", "sun", "was", "bright"
  };

  final Path model;
  final Path dataset;
  final Path output;
  final Path config;
  final Path tokenizer;

  /**
   * @param tokenizer the stories260K {@code tokenizer.model}
   * @param extraYaml further config lines (max_steps, save_steps, ...)
   */
  TinyLlamaRun(Path root, Path tokenizer, String extraYaml) throws Exception {
    this.tokenizer = tokenizer;
    model = root.resolve("tiny-llama");
    dataset = root.resolve("shards");
    output = root.resolve("out");
    config = root.resolve("train.yaml");
    SentencePieceTokenizer tok = SentencePieceTokenizer.load(tokenizer);
    LlamaConfig mc =
        new LlamaConfig(32, 64, 2, 4, 2, tok.vocabSize(), 1e-5, 10000.0, null, false, 64);
    RandomInit.writeHfDir(model, mc, 1234, tokenizer);
    List<int[]> blocks = blocks(tok, 132);
    writeDataset(blocks.subList(0, 128), blocks.subList(128, 132), tok.vocabSize());
    Files.writeString(
        config,
        String.join(
            "\n",
            "model_name_or_path: " + model,
            "dataset_dir: " + dataset,
            "output_dir: " + output,
            "seed: 7",
            "per_device_train_batch_size: 2",
            "gradient_accumulation_steps: 1",
            "learning_rate: 5.0e-3",
            "lr_scheduler_type: cosine",
            "warmup_ratio: 0.1",
            "weight_decay: 0.01",
            "max_grad_norm: 1.0",
            "lora_rank: 4",
            "lora_alpha: 8",
            // dropout on: a resumed run must also restore the dropout masks' random stream
            "lora_dropout: 0.1",
            "trainable: q_proj,v_proj,k_proj,o_proj,gate_proj,down_proj,up_proj",
            "modules_to_save: embed_tokens,lm_head",
            "logging_steps: 1",
            "eval_steps: 0",
            "world_size: 2",
            "backend: cpu",
            // auto on the cluster test's fake GPUs: a real Spark GPU assignment, CPU backend → tcp
            "ddp_backend: auto",
            extraYaml,
            ""));
  }

  /**
   * Seeded sentences over a small vocabulary, tokenized per document with an EOS after each and cut
   * into blocks (group_texts).
   */
  private static List<int[]> blocks(SentencePieceTokenizer tok, int n) {
    SplittableRandom r = new SplittableRandom(99);
    List<Integer> stream = new ArrayList<>();
    while (stream.size() < n * BLOCK) {
      StringBuilder doc = new StringBuilder();
      for (int s = 0; s < 4; s++) {
        int len = 4 + r.nextInt(6);
        for (int w = 0; w < len; w++) {
          String word = WORDS[r.nextInt(WORDS.length)];
          doc.append(w == 0 ? Character.toUpperCase(word.charAt(0)) + word.substring(1) : word);
          doc.append(w == len - 1 ? ". " : " ");
        }
      }
      for (int id : tok.encode(doc.toString().trim())) {
        stream.add(id);
      }
      stream.add(2);
    }
    List<int[]> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int[] b = new int[BLOCK];
      for (int t = 0; t < BLOCK; t++) {
        b[t] = stream.get(i * BLOCK + t);
      }
      out.add(b);
    }
    return out;
  }

  private void writeDataset(List<int[]> train, List<int[]> validation, int vocab) throws Exception {
    String tokSha = TrainFixture.sha256(Files.readAllBytes(tokenizer));
    RecipeTestSupport.dataset(dataset, train, validation, BLOCK, vocab, tokSha);
  }

  /**
   * Trains the config uninterrupted on 2 rank threads of this JVM joined by the TCP ring (the
   * communicator TrainerRankWork builds on the executors) into {@code out}; every tensor of the
   * final adapter.
   */
  Map<String, float[]> trainReference(Path out, PrintStream log) throws Exception {
    var cfg =
        ConfigLoader.load(Files.readString(config), config.toString(), List.of("output_dir=" + out))
            .config();
    byte[] secret = new byte[32];
    new SplittableRandom(5).nextBytes(secret);
    log.print(
        RecipeTestSupport.train(RankThreads.tcpRing(2, secret, TcpRingOptions.defaults()), cfg));
    return adapter(out);
  }

  /** Every tensor of {@code <outputDir>/pt_lora_model/adapter_model.safetensors}. */
  static Map<String, float[]> adapter(Path outputDir) {
    return RecipeTestSupport.tensors(outputDir.resolve("pt_lora_model/adapter_model.safetensors"));
  }
}
