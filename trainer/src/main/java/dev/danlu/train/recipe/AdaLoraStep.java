package dev.danlu.train.recipe;

import dev.danlu.train.checkpoint.DType;
import dev.danlu.train.checkpoint.FloatTensor;
import dev.danlu.train.checkpoint.SafeTensors;
import dev.danlu.train.checkpoint.SafeTensorsWriter;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraModule;
import dev.danlu.train.lora.RankAllocator;
import dev.danlu.train.zero.FlatParams;
import dev.danlu.train.zero.Zero2Optimizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * AdaLoRA's part of the training loop on one rank: taps the gradient each ZeRO-2 step applied
 * (all-gathered, so identical on every rank), runs the {@link RankAllocator} on it after the step,
 * writes masked singular values back into the replicated parameters and this rank's master
 * partition, and saves / restores the allocator's state with each checkpoint ({@value #FILE}).
 */
public final class AdaLoraStep implements CheckpointManager.ExtraState {
  static final String FILE = "adalora_allocator.safetensors";

  private final LoraAdapter ad;
  private final RankAllocator alloc;
  private final StepRunner runner;
  private final float[] tap;

  public AdaLoraStep(StepRunner runner, LoraAdapter ad) {
    this.ad = ad;
    this.runner = runner;
    this.alloc = new RankAllocator(ad);
    this.tap = new float[runner.flat().padded()];
    runner.optimizer().tapGradients(tap);
  }

  public RankAllocator allocator() {
    return alloc;
  }

  /** After optimizer step {@code step} (0-based). An overflowed (skipped) step is not scored. */
  public void afterStep(long step, Zero2Optimizer.StepResult r) {
    if (r.skipped()) {
      return;
    }
    FlatParams flat = runner.flat();
    boolean changed =
        alloc.updateAndAllocate(
            step,
            name -> {
              FlatParams.Slot s = runner.adapterFlat().slot(name);
              float[] g = new float[s.length()];
              System.arraycopy(tap, s.offset(), g, 0, s.length());
              return g;
            });
    if (changed) {
      // the masked E into the replicated parameters, then this rank's master partition
      float[] p = flat.params();
      for (int l = 0; l < ad.loraE.length; l++) {
        for (LoraModule m : LoraModule.values()) {
          if (ad.loraE[l][m.ordinal()] != null) {
            FlatParams.Slot s = runner.adapterFlat().slot(LoraAdapter.adaLoraKey(l, m, "lora_E"));
            float[] e = ad.loraE[l][m.ordinal()].reshape(-1).toFloatVector();
            System.arraycopy(e, 0, p, s.offset(), e.length);
          }
        }
      }
      runner.optimizer().reloadMasterFromParams();
    }
  }

  @Override
  public void save(Path dir) throws IOException {
    Map<String, FloatTensor> t = new LinkedHashMap<>();
    alloc.expAvgIpt().forEach((k, v) -> t.put(k + ".exp_avg_ipt", FloatTensor.of(v, v.length)));
    alloc.expAvgUnc().forEach((k, v) -> t.put(k + ".exp_avg_unc", FloatTensor.of(v, v.length)));
    SafeTensorsWriter.write(
        dir.resolve(FILE), t, DType.F32, Map.of("rank_pattern", encode(ad.rankPattern)));
  }

  @Override
  public void restore(Path dir) throws IOException {
    Path f = dir.resolve(FILE);
    if (!Files.isRegularFile(f)) {
      throw new IOException(
          dir
              + " has no "
              + FILE
              + ": it was not written by an AdaLoRA run (peft_type ADALORA); resume it with its"
              + " own peft_type, or start in a new output_dir");
    }
    try (SafeTensors st = SafeTensors.open(f)) {
      for (Map.Entry<String, float[]> e : alloc.expAvgIpt().entrySet()) {
        read(st, e.getKey() + ".exp_avg_ipt", e.getValue());
      }
      for (Map.Entry<String, float[]> e : alloc.expAvgUnc().entrySet()) {
        read(st, e.getKey() + ".exp_avg_unc", e.getValue());
      }
      ad.rankPattern = decode(st.metadata().get("rank_pattern"), ad);
    }
    ad.syncSvd();
  }

  private static void read(SafeTensors st, String name, float[] into) throws IOException {
    if (!st.names().contains(name)) {
      throw new IOException("allocator state has no '" + name + "' (another adapter shape?)");
    }
    float[] v = st.readFloats(name);
    if (v.length != into.length) {
      throw new IOException("allocator state '" + name + "' has " + v.length + " values");
    }
    System.arraycopy(v, 0, into, 0, v.length);
  }

  /** "l.module:1101...;..." for each target, or "" before the first mask. */
  static String encode(boolean[][][] pattern) {
    if (pattern == null) {
      return "";
    }
    StringBuilder b = new StringBuilder();
    for (int l = 0; l < pattern.length; l++) {
      for (LoraModule m : LoraModule.values()) {
        boolean[] keep = pattern[l][m.ordinal()];
        if (keep == null) {
          continue;
        }
        b.append(b.length() == 0 ? "" : ";").append(l).append('.').append(m.projName).append(':');
        for (boolean k : keep) {
          b.append(k ? '1' : '0');
        }
      }
    }
    return b.toString();
  }

  static boolean[][][] decode(String s, LoraAdapter ad) {
    if (s == null || s.isEmpty()) {
      return null;
    }
    boolean[][][] p = new boolean[ad.loraA.length][LoraModule.values().length][];
    for (String part : s.split(";")) {
      int dot = part.indexOf('.');
      int colon = part.indexOf(':');
      int l = Integer.parseInt(part.substring(0, dot));
      LoraModule m = LoraModule.fromProjName(part.substring(dot + 1, colon));
      String bits = part.substring(colon + 1);
      boolean[] keep = new boolean[bits.length()];
      for (int i = 0; i < keep.length; i++) {
        keep[i] = bits.charAt(i) == '1';
      }
      p[l][m.ordinal()] = keep;
    }
    return p;
  }
}
