package dev.danlu.train.recipe;

import dev.danlu.train.checkpoint.DType;
import dev.danlu.train.checkpoint.SafeTensors;
import dev.danlu.train.checkpoint.SafeTensorsWriter;
import dev.danlu.train.lora.CounterRng;
import dev.danlu.train.lora.LoraAdapter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A scalar head on the model's normed last hidden state, {@code v = W h + b} (TRL's {@code
 * ValueHead}: a {@code Linear(hidden, 1)} named {@code v_head.summary}), as a reward model's score
 * and PPO's value. Stored beside the PEFT adapter as {@code value_head.safetensors} with TRL's /
 * LLaMA-Factory's names. TRL puts a dropout (0.1) before the linear layer; danlu's head has none.
 *
 * @param weight (1, hidden)
 * @param bias (1)
 */
public record ValueHead(INDArray weight, INDArray bias) {
  public static final String WEIGHT = "v_head.summary.weight";
  public static final String BIAS = "v_head.summary.bias";
  public static final String FILE = "value_head.safetensors";

  /**
   * PyTorch's {@code Linear} init, U(−1/√hidden, 1/√hidden) for weight and bias, keyed by the seed
   * alone (every rank draws the same head).
   */
  public static ValueHead init(int hidden, long seed) {
    double bound = 1.0 / Math.sqrt(hidden);
    long key = CounterRng.key(seed, 0x76686561644cL); // "vheadL"
    float[] w = new float[hidden];
    for (int i = 0; i < hidden; i++) {
      w[i] = (float) ((2 * CounterRng.uniform(key, i) - 1) * bound);
    }
    float b = (float) ((2 * CounterRng.uniform(key, hidden) - 1) * bound);
    return new ValueHead(
        Nd4j.create(w, new long[] {1, hidden}, DataType.FLOAT),
        Nd4j.create(new float[] {b}, new long[] {1}, DataType.FLOAT));
  }

  /** Reads {@code dir/value_head.safetensors}, checked against the model's hidden size. */
  public static ValueHead load(Path dir, int hidden) throws IOException {
    Path f = dir.resolve(FILE);
    if (!Files.isRegularFile(f)) {
      throw new IOException(
          dir
              + " has no "
              + FILE
              + ": not a reward model (train one with stage: rm, whose output is rm_lora_model)");
    }
    try (SafeTensors st = SafeTensors.open(f)) {
      for (String n : new String[] {WEIGHT, BIAS}) {
        if (!st.contains(n)) {
          throw new IOException(f + ": no tensor " + n + " (TRL's value head names)");
        }
      }
      long[] ws = st.info(WEIGHT).shape();
      if (ws.length != 2 || ws[0] != 1 || ws[1] != hidden) {
        throw new IOException(
            f
                + ": "
                + WEIGHT
                + " has shape "
                + java.util.Arrays.toString(ws)
                + ", the model needs [1, "
                + hidden
                + "]; the reward model was trained on another base model");
      }
      return new ValueHead(
          Nd4j.create(st.readFloats(WEIGHT), new long[] {1, hidden}, DataType.FLOAT),
          Nd4j.create(st.readFloats(BIAS), new long[] {1}, DataType.FLOAT));
    }
  }

  /** Writes {@code dir/value_head.safetensors} (F32, TRL's names). */
  public void save(Path dir) throws IOException {
    try (SafeTensorsWriter w =
        SafeTensorsWriter.builder(dir.resolve(FILE))
            .setDType(DType.F32)
            .optMetadata("format", "pt")
            .declare(BIAS, 1)
            .declare(WEIGHT, 1, weight.length())
            .open()) {
      w.writeFloats(bias.toFloatVector());
      w.writeFloats(weight.reshape(-1).toFloatVector());
    }
  }

  /** Makes the head trainable with the adapter; returns its gradients (weight, bias). */
  public INDArray[] attachTo(LoraAdapter ad) {
    return new INDArray[] {ad.addHead(WEIGHT, weight), ad.addHead(BIAS, bias)};
  }

  public int hidden() {
    return Math.toIntExact(weight.length());
  }
}
