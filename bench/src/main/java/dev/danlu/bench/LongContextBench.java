package dev.danlu.bench;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.model.AttentionImpl;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.Llama;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.model.NtkAlpha;
import dev.danlu.train.model.RandomInit;
import dev.danlu.train.tensor.Backend;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The 16K feasibility runs, one process each so that {@code /usr/bin/time -v} reports its
 * peak RSS: a 1-layer, 256-wide, 32-head model (head dim 8, vocabulary 32000) at {@code seq} tokens
 * with the tiled attention, either an evaluation forward (loss over every token, as {@code eval ppl
 * --ctx} computes it; NTK alpha auto past its max_position_embeddings of 4096) or {@code steps}
 * LoRA training steps (forward + backward, r=8 on all seven projections, gradient checkpointing,
 * rope_scaling linear 4 as the 16K PI recipe sets it).
 *
 * <p>Run: {@code /usr/bin/time -v bench/run.sh LongContextBench eval|train [seq=16384] [steps=2]}
 * (with {@code DANLU_JAVA_OPTS=-Xmx1g}: the arrays live off-heap). {@code LongContextBench
 * write-model DIR TOKENIZER} writes the same model as a Hugging Face directory (with that
 * 32000-piece tokenizer), for the real {@code danlu eval ppl --ctx 16384} (docs/long-context.md).
 */
public final class LongContextBench {
  private LongContextBench() {}

  public static void main(String[] args) throws Exception {
    Backend.select();
    String mode = args.length > 0 ? args[0] : "eval";
    int seq = args.length > 1 && !mode.equals("write-model") ? Integer.parseInt(args[1]) : 16384;
    int steps = args.length > 2 && !mode.equals("write-model") ? Integer.parseInt(args[2]) : 2;
    LlamaConfig c = new LlamaConfig(256, 688, 1, 32, 32, 32000, 1e-5, 10000.0, null, false, 4096);
    if (mode.equals("write-model")) {
      RandomInit.writeHfDir(Path.of(args[1]), c, 1, Path.of(args[2]));
      System.out.println("wrote " + args[1]);
      return;
    }
    LlamaWeights w = LlamaWeights.random(c, 1, DataType.FLOAT);
    SplittableRandom r = new SplittableRandom(1);
    int[] ids = new int[seq];
    for (int i = 0; i < seq; i++) {
      ids[i] = r.nextInt(c.vocabSize());
    }
    long t0 = System.nanoTime();
    if (mode.equals("eval")) {
      w = w.withNtk(NtkAlpha.AUTO);
      LlamaState s = new LlamaState(w.config(), 1, seq, null, false, DataType.FLOAT);
      double loss = Llama.forward(w, null, s, new Batch(1, seq, ids, null, ids, null, 0, false));
      System.out.printf(
          "eval T=%d (tiled %b, NTK auto): loss %.4f over %d tokens, forward %.1f s%n",
          seq, s.tiled, loss, s.tokenCount(), (System.nanoTime() - t0) / 1e9);
    } else {
      LlamaConfig pi =
          c.withRopeScaling(
              new LlamaConfig.RopeScaling(LlamaConfig.RopeScaling.Type.LINEAR, 4.0), 16384);
      w = w.withRope(pi);
      LoraConfig lc = new LoraConfig(8, 16, 0.05, LoraConfig.allTargets(), false, false, 1);
      LoraAdapter ad = LoraAdapter.init(lc, w);
      LlamaState s = new LlamaState(pi, 1, seq, lc, true, DataType.FLOAT, AttentionImpl.TILED);
      for (int step = 0; step < steps; step++) {
        long s0 = System.nanoTime();
        double loss = Llama.forward(w, ad, s, new Batch(1, seq, ids, null, ids, null, step, true));
        long s1 = System.nanoTime();
        Llama.backward(w, ad, s, 1.0);
        System.out.printf(
            "train T=%d step %d (PI linear 4, LoRA r=8, checkpointing): loss %.4f, forward %.1f s,"
                + " backward %.1f s%n",
            seq, step, loss, (s1 - s0) / 1e9, (System.nanoTime() - s1) / 1e9);
      }
    }
    for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (line.startsWith("VmHWM")) {
        System.out.println("peak RSS (VmHWM): " + line.substring(6).trim());
      }
    }
  }
}
