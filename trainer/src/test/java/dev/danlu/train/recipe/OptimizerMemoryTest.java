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
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Each rank's optimizer memory for the trainer's real trainable layout (LoRA on all seven
 * projections + full embed_tokens and lm_head, laid out by {@link AdapterFlat}), measured as heap
 * allocated by this thread while constructing one rank's optimizer: 12 bytes × trainable / N plus
 * the alignment padding, for N = 1, 2, 3.
 *
 * <p>Counted with the thread's own allocation counter, not as heap growth between two System.gc()
 * calls: in the module's shared test JVM other tests' leftover threads (servers, Spark, cleaners)
 * allocate and free concurrently, and heap growth once came out 3.6 MB below the state it held.
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
    com.sun.management.ThreadMXBean threads =
        (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    long self = Thread.currentThread().getId();
    for (int n : new int[] {1, 2, 3}) {
      AdapterFlat af = new AdapterFlat(ad, n, StepRunner.ALIGNMENT);
      LocalCommunicator comm = LocalCommunicator.group(n).get(n - 1);
      long before = threads.getThreadAllocatedBytes(self);
      Zero2Optimizer opt =
          new Zero2Optimizer(
              comm,
              af.flat(),
              new Zero2Optimizer.Config(
                  AdamW.huggingFaceDefaults(), 1e-3, 0.01, 1.0, 1 << 20, LrSchedule.constant()),
              DynamicLossScaler.disabled());
      long measured = threads.getThreadAllocatedBytes(self) - before;
      long partition = af.flat().padded() / n;
      System.out.printf(
          "optimizer state per rank, trainable %d, N=%d: allocated %d bytes, 12 x trainable/N"
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
      // the three float arrays (master, m, v) plus array headers and the optimizer's small
      // bookkeeping; nothing of the size of a fourth copy
      long slack = 1 << 20;
      assertTrue(
          measured >= 12L * partition && measured <= 12L * partition + slack,
          "allocated " + measured + " bytes for " + 12L * partition + " bytes of state");
      sink = opt;
    }
  }

  private static Object sink;
}
