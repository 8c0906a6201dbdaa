package dev.danlu.train.recipe;

import dev.danlu.train.checkpoint.VocabResize;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.lora.LoraModule;
import dev.danlu.train.lora.PeftBridge;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.tensor.Backend;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.List;

/**
 * The frozen base model and a fresh adapter for a run, checked against the dataset's tokenizer:
 * token ids must fit the model's vocabulary, and when the tokenizer's size differs from the model's
 * and embed_tokens + lm_head are trained in full, both are resized to the tokenizer's size as the
 * reference run_clm_pt does ({@code resize_token_embeddings(len(tokenizer))}).
 *
 * @param config the model config with the effective vocabulary
 * @param weights the base weights (their own vocabulary, frozen)
 * @param adapter trainable LoRA + full matrices, rows = effective vocabulary
 * @param fingerprint identifies the base model (see {@link #fingerprint})
 * @param resizedFrom the model's own vocabulary size when a resize happened, else -1
 */
public record ModelSetup(
    LlamaConfig config,
    LlamaWeights weights,
    LoraAdapter adapter,
    String fingerprint,
    int resizedFrom) {

  /**
   * Loads the base model named by {@code model_name_or_path} and a fresh adapter for data tokenized
   * with a {@code tokenizerVocab}-piece tokenizer.
   */
  public static ModelSetup load(TrainConfig cfg, int tokenizerVocab) throws IOException {
    Path dir = Path.of(cfg.modelNameOrPath());
    // frozen weights in torch_dtype (auto: the checkpoint's on CUDA, float32 on CPU); the
    // adapter, its gradients and the optimizer are float32 whatever this is
    LlamaWeights w = longContext(cfg, HfLlama.load(dir, cfg.torchDtypeSetting(), Backend.loaded()));
    LlamaConfig mc = w.config();
    EnumSet<LoraModule> targets = EnumSet.noneOf(LoraModule.class);
    for (String t : cfg.trainable()) {
      targets.add(LoraModule.fromProjName(t));
    }
    boolean embed = cfg.modulesToSave().contains("embed_tokens");
    boolean head = cfg.modulesToSave().contains("lm_head");
    LoraConfig lc =
        new LoraConfig(
            cfg.loraRank(), cfg.loraAlpha(), cfg.loraDropout(), targets, embed, head, cfg.seed());
    if (cfg.peftPath() != null && !cfg.peftPath().isBlank()) {
      if (cfg.adalora()) {
        throw new IllegalArgumentException(
            "peft_path with peft_type ADALORA: continuing an adapter as AdaLoRA is not supported"
                + " (its allocator state is not in the adapter files); train a fresh AdaLoRA"
                + " adapter (remove peft_path) or continue with peft_type LORA");
      }
      return continued(cfg, dir, w, tokenizerVocab);
    }
    if (cfg.adalora()) {
      // PEFT's AdaLoRA: every target starts at init_r (lora_rank does not apply)
      lc =
          new LoraConfig(
              cfg.initR(), cfg.loraAlpha(), cfg.loraDropout(), targets, embed, head, cfg.seed());
    }
    int tokVocab = tokenizerVocab;
    int vocab = mc.vocabSize();
    int resizedFrom = -1;
    if (tokVocab > vocab && !(embed && head)) {
      throw new IllegalArgumentException(
          "the dataset's tokenizer has "
              + tokVocab
              + " pieces but the model "
              + dir
              + " only "
              + vocab
              + " embeddings; add embed_tokens and lm_head to modules_to_save so they are"
              + " resized and trained, or prepare the data with the model's tokenizer");
    }
    if (tokVocab != vocab && embed && head) {
      resizedFrom = vocab;
      vocab = tokVocab;
    }
    VocabResize.Init rowInit =
        cfg.vocabResizeInit() == TrainConfig.VocabInit.MEAN
            ? VocabResize.Init.MEAN
            : VocabResize.Init.NORMAL;
    LoraAdapter ad =
        cfg.adalora()
            ? LoraAdapter.initAdaLora(lc, adaLoraConfig(cfg), w, vocab, rowInit)
            : LoraAdapter.init(lc, w, vocab, rowInit);
    return new ModelSetup(mc.withVocabSize(vocab), w, ad, fingerprint(dir), resizedFrom);
  }

  /** AdaLoRA's keys of the config (PEFT's AdaLoraConfig names). */
  public static dev.danlu.train.lora.AdaLoraConfig adaLoraConfig(TrainConfig cfg) {
    return new dev.danlu.train.lora.AdaLoraConfig(
        cfg.initR(),
        cfg.targetR(),
        cfg.tinit(),
        cfg.tfinal(),
        cfg.deltaT(),
        cfg.beta1(),
        cfg.beta2(),
        cfg.orthRegWeight(),
        cfg.totalStep());
  }

  /**
   * The weights under the run's long-context keys: {@code rope_scaling: linear} (position
   * interpolation as LLaMA-Factory applies it: factor = ceil(length / max_position_embeddings),
   * max_position_embeddings × factor, so LLaMA-2's 4096 trained at 16384 becomes the reference's
   * 16K config {@code {type: linear, factor: 4}, 16384}) and {@code ntk_alpha}.
   */
  static LlamaWeights longContext(TrainConfig cfg, LlamaWeights w) {
    LlamaConfig c = w.config();
    if ("linear".equals(cfg.ropeScaling())) {
      // the example-based stages train on max_seq_length, pretraining on block_size
      boolean sft = java.util.Set.of("sft", "rm", "dpo", "ppo").contains(cfg.stage());
      int length = sft ? cfg.maxSeqLength() : cfg.blockSize();
      String key = sft ? "max_seq_length" : "block_size";
      if (length <= 0) {
        throw new IllegalArgumentException(
            "rope_scaling linear: set "
                + key
                + " to the training length (the factor is ceil("
                + key
                + " / max_position_embeddings))");
      }
      if (c.ropeScaling() != null) {
        throw new IllegalArgumentException(
            "rope_scaling linear: the model "
                + cfg.modelNameOrPath()
                + " already has rope_scaling "
                + c.ropeScaling()
                + " in its config.json; remove the rope_scaling key");
      }
      int maxPos = c.maxPositionEmbeddings();
      if (length <= maxPos) {
        throw new IllegalArgumentException(
            "rope_scaling linear: "
                + key
                + " "
                + length
                + " is not longer than the model's max_position_embeddings "
                + maxPos
                + "; interpolation is for training past it (remove rope_scaling)");
      }
      int factor = (length + maxPos - 1) / maxPos;
      c =
          c.withRopeScaling(
              new LlamaConfig.RopeScaling(LlamaConfig.RopeScaling.Type.LINEAR, factor),
              maxPos * factor);
    }
    c = c.withNtk(cfg.ntk());
    return c.equals(w.config()) ? w : w.withRope(c);
  }

  /**
   * The adapter at {@code peft_path} continued (run_sft.sh's {@code --peft_path}, PEFT's {@code
   * PeftModel.from_pretrained(..., is_trainable=True)}): its own rank, alpha, dropout, targets and
   * modules_to_save, and its embed_tokens / lm_head rows as the vocabulary.
   */
  private static ModelSetup continued(TrainConfig cfg, Path dir, LlamaWeights w, int tokVocab)
      throws IOException {
    LlamaConfig mc = w.config();
    Path peft = Path.of(cfg.peftPath());
    LoraAdapter ad =
        PeftBridge.load(peft, mc, org.nd4j.linalg.api.buffer.DataType.FLOAT, cfg.seed());
    int vocab = ad.vocabSize();
    if (tokVocab > vocab) {
      throw new IllegalArgumentException(
          "peft_path "
              + peft
              + ": the adapter covers "
              + vocab
              + " tokens but the dataset's tokenizer has "
              + tokVocab
              + " pieces; prepare the data with the adapter's tokenizer");
    }
    return new ModelSetup(
        mc.withVocabSize(vocab),
        w,
        ad,
        fingerprint(dir),
        vocab != mc.vocabSize() ? mc.vocabSize() : -1);
  }

  /**
   * sha256 over config.json and, per weight file (sorted by name), its name, size and the first and
   * last MiB: distinguishes models without reading 13 GB at every start.
   */
  static String fingerprint(Path dir) throws IOException {
    MessageDigest md;
    try {
      md = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    md.update(Files.readAllBytes(dir.resolve("config.json")));
    List<Path> files = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.{safetensors,bin}")) {
      ds.forEach(files::add);
    }
    files.sort(null);
    for (Path f : files) {
      long size = Files.size(f);
      md.update(
          (f.getFileName() + ":" + size + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8));
      try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
        digestRange(md, ch, 0, Math.min(size, 1 << 20));
        digestRange(md, ch, Math.max(0, size - (1 << 20)), Math.min(size, 1 << 20));
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }

  private static void digestRange(MessageDigest md, FileChannel ch, long pos, long len)
      throws IOException {
    ByteBuffer b = ByteBuffer.allocate((int) len);
    while (b.hasRemaining()) {
      if (ch.read(b, pos + b.position()) < 0) {
        break;
      }
    }
    b.flip();
    md.update(b);
  }

  /** sha256 of bytes, in hex. */
  static String sha256Hex(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** sha256 of a file (the tokenizer, to compare with the shards' tokenizer hash). */
  static String sha256(Path file) throws IOException {
    try (InputStream in = Files.newInputStream(file)) {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      byte[] buf = new byte[1 << 16];
      int n;
      while ((n = in.read(buf)) > 0) {
        md.update(buf, 0, n);
      }
      return HexFormat.of().formatHex(md.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
