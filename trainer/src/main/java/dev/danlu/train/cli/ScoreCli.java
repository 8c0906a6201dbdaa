package dev.danlu.train.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.danlu.data.cli.CliSupport;
import dev.danlu.data.sft.PairRecord;
import dev.danlu.data.sft.SftExampleBuilder;
import dev.danlu.data.sft.SftExamples;
import dev.danlu.data.sft.SftRecordReader;
import dev.danlu.data.tokenizer.TextTokenizer;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.PeftBridge;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.HfLlama;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.recipe.RewardObjective;
import dev.danlu.train.recipe.ValueHead;
import dev.danlu.train.tensor.Backend;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.nd4j.linalg.api.buffer.DataType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code danlu score}: a reward model (stage rm's {@code rm_lora_model}: PEFT adapter + {@code
 * value_head.safetensors}) scores preference pairs, each response after the Alpaca-2 prompt as
 * prep-pairs builds it; prints per pair the chosen and rejected rewards and the accuracy (share of
 * pairs whose chosen reward is higher) as JSON.
 */
@Command(
    name = "score",
    sortOptions = false,
    description = {
      "Score preference pairs with a reward model (stage rm): rewards and accuracy as JSON.",
      "Pairs are prep-pairs' records ({instruction, input, chosen, rejected} or {instruction,"
          + " input, output: [chosen, rejected]}, *.json or *.jsonl); a bad record stops the run"
          + " naming file and record.",
      ""
    })
public final class ScoreCli implements Callable<Integer> {
  @Option(
      names = "--model",
      required = true,
      paramLabel = "<hf dir>",
      description = "The reward model's base: Hugging Face LLaMA directory with tokenizer.model.")
  private Path model;

  @Option(
      names = "--adapter",
      required = true,
      paramLabel = "<rm dir>",
      description = "The reward model: a PEFT adapter directory with value_head.safetensors.")
  private Path adapter;

  @Option(
      names = "--pairs",
      required = true,
      paramLabel = "<file>",
      description = "Preference pairs to score (*.json array or *.jsonl).")
  private Path pairs;

  @Option(
      names = "--output",
      paramLabel = "<file>",
      description = "Write the JSON there (stdout gets a one-line summary) instead of stdout.")
  private Path output;

  @Option(
      names = "--max-seq-length",
      paramLabel = "<L>",
      converter = CliSupport.PositiveInt.class,
      description = "Prompt + response are cut to L tokens, as prep-pairs cuts (default 512).")
  private int maxSeqLength = 512;

  @Spec private CommandSpec spec;

  private final PrintStream out;
  private final PrintStream err;

  public ScoreCli() {
    this(System.out, System.err);
  }

  public ScoreCli(PrintStream out, PrintStream err) {
    this.out = out;
    this.err = err;
  }

  public static int run(String[] args, PrintStream out, PrintStream err) {
    return CliSupport.execute(new ScoreCli(out, err), args, out, err);
  }

  @Override
  public Integer call() throws IOException {
    Path tokFile = model.resolve("tokenizer.model");
    if (!Files.isRegularFile(tokFile)) {
      err.println(
          "danlu score: " + tokFile + " not found (the model directory needs its tokenizer)");
      return CliSupport.FAILED;
    }
    LlamaWeights w = HfLlama.load(model, dev.danlu.train.tensor.TorchDtype.AUTO, Backend.select());
    LoraAdapter ad = PeftBridge.load(adapter, w.config(), DataType.FLOAT);
    ValueHead head = ValueHead.load(adapter, w.config().hiddenSize());
    LlamaConfig c = w.config().withVocabSize(ad.vocabSize());
    RewardObjective rm = new RewardObjective(head);
    ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    ObjectNode root = json.createObjectNode();
    ArrayNode list = root.putArray("pairs");
    int n = 0;
    int right = 0;
    double marginSum = 0;
    try (TextTokenizer tok = TextTokenizer.load(tokFile);
        SftRecordReader in =
            SftRecordReader.openPairs(Files.newInputStream(pairs), pairs.toString())) {
      if (tok.vocabSize() > c.vocabSize()) {
        err.printf(
            "danlu score: tokenizer %s has %d pieces but the reward model only %d embeddings;"
                + " score with the tokenizer the reward model was trained with%n",
            tokFile, tok.vocabSize(), c.vocabSize());
        return CliSupport.FAILED;
      }
      SftExampleBuilder builder = new SftExampleBuilder(tok, maxSeqLength);
      int pad = tok.padId() >= 0 ? tok.padId() : 0;
      for (SftRecordReader.Item item = in.next(); item != null; item = in.next()) {
        if (item.bad()) {
          err.println("danlu score: " + item.error());
          return CliSupport.FAILED;
        }
        PairRecord p = item.pair();
        SftExampleBuilder.Built bc = builder.build(p.as(p.chosen()));
        SftExampleBuilder.Built br = builder.build(p.as(p.rejected()));
        if (bc.fullyMasked()) {
          err.printf(
              "danlu score: %s: %s: the prompt alone fills --max-seq-length %d; raise it%n",
              pairs, in.position(item.index()), maxSeqLength);
          return CliSupport.FAILED;
        }
        double[] r = score(w, ad, c, rm, bc.example(), br.example(), pad);
        ObjectNode o = list.addObject();
        o.put("index", item.index());
        o.put("chosen", r[0]);
        o.put("rejected", r[1]);
        n++;
        right += r[0] > r[1] ? 1 : 0;
        marginSum += r[0] - r[1];
      }
    }
    double accuracy = n == 0 ? Double.NaN : (double) right / n;
    root.put("count", n);
    root.put("accuracy", accuracy);
    root.put("mean_margin", n == 0 ? Double.NaN : marginSum / n);
    byte[] bytes = json.writeValueAsBytes(root);
    if (output != null) {
      Files.write(output, bytes);
      out.printf(Locale.ROOT, "danlu score: %d pairs, accuracy %.4f -> %s%n", n, accuracy, output);
    } else {
      out.println(new String(bytes, StandardCharsets.UTF_8));
    }
    return CliSupport.OK;
  }

  /** Rewards of one pair: {chosen, rejected}, as one right-padded batch of two rows. */
  static double[] score(
      LlamaWeights w,
      LoraAdapter ad,
      LlamaConfig c,
      RewardObjective rm,
      SftExamples.Example chosen,
      SftExamples.Example rejected,
      int pad) {
    int seq = Math.max(chosen.length(), rejected.length());
    int[] ids = new int[2 * seq];
    int[] mask = new int[2 * seq];
    Arrays.fill(ids, pad);
    System.arraycopy(chosen.inputIds(), 0, ids, 0, chosen.length());
    System.arraycopy(rejected.inputIds(), 0, ids, seq, rejected.length());
    Arrays.fill(mask, 0, chosen.length(), 1);
    Arrays.fill(mask, seq, seq + rejected.length(), 1);
    LlamaState s = new LlamaState(c, 2, seq, ad.config, false, DataType.FLOAT);
    return rm.rewards(w, ad, s, Batch.of(2, seq, ids, mask));
  }
}
