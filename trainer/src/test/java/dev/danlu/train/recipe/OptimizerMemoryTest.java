package dev.danlu.train.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.danlu.train.comm.LocalCommunicator;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaWeights;
import dev.danlu.train.optim.AdamW;
import dev.danlu.train.optim.DynamicLossScaler;
import dev.danlu.train.optim.LrSchedule;
import dev.danlu.train.zero.Zero2Optimizer;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Each rank's optimizer memory for the trainer's real trainable layout (LoRA on all seven
 * projections + full embed_tokens and lm_head, laid out by {@link AdapterFlat}), measured as heap
 * growth around constructing one rank's optimizer (the comm branch's Zero2MemoryTest method): 12
 * bytes × trainable / N plus the alignment padding, for N = 1, 2, 3.
 */
class OptimizerMemoryTest {
  @Test
  void eachRankHoldsTwelveBytesPerTrainableElementOverN() {
    LlamaConfig c = new LlamaConfig(256, 688, 2, 8, 4, 8000, 1e-5, 10000.0, null, false, 128);
    LoraAdapter ad =
        LoraAdapter.init(
            new LoraConfig(16, 32, 0.05, LoraConfig.allTargets(), true, true, 1),
            LlamaWeights.random(c, 1, DataType.FLOAT));
    long trainable = ad.numTrainable();
    MemoryMXBean mem = ManagementFactory.getMemoryMXBean();
    for (int n : new int[] {1, 2, 3}) {
      AdapterFlat af = new AdapterFlat(ad, n, StepRunner.ALIGNMENT);
      LocalCommunicator comm = LocalCommunicator.group(n).get(n - 1);
      long before = usedHeap(mem);
      Zero2Optimizer opt =
          new Zero2Optimizer(
              comm,
              af.flat(),
              new Zero2Optimizer.Config(
                  AdamW.huggingFaceDefaults(), 1e-3, 0.01, 1.0, 1 << 20, LrSchedule.constant()),
              DynamicLossScaler.disabled());
      long measured = usedHeap(mem) - before;
      long partition = af.flat().padded() / n;
      System.out.printf(
          "optimizer state per rank, trainable %d, N=%d: heap growth %d bytes, 12 x trainable/N"
              + " = %.0f, padding %d elements, stateBytes %d (%.4f x 12 x trainable/N)%n",
          trainable,
          n,
          measured,
          12.0 * trainable / n,
          partition * n - trainable,
          opt.stateBytes(),
          measured / (12.0 * trainable / n));
      assertEquals(12L * partition, opt.stateBytes());
      assertTrue(partition * n - trainable < (long) StepRunner.ALIGNMENT * n);
      long slack = 3 * (4L << 20) + (1 << 20); // G1 rounds each large array up to whole regions
      assertTrue(
          measured >= 12L * partition - (1 << 20) && measured <= 12L * partition + slack,
          "heap grew by " + measured + " for " + 12L * partition + " bytes of state");
      sink = opt;
    }
  }

  private static Object sink;

  private static long usedHeap(MemoryMXBean mem) {
    sink = null;
    for (int i = 0; i < 3; i++) {
      System.gc();
    }
    return mem.getHeapMemoryUsage().getUsed();
  }
}
