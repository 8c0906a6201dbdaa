package dev.danlu.train.checkpoint;

import java.nio.file.Path;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Measurement program (not a unit test) for docs/benchmarks.md.
 *
 * <ul>
 *   <li>{@code gemm}: the merge kernel {@link LoraDelta} (blocked, with copies) against one bare
 *       ND4J gemm on a LLaMA-7B MLP shape ([11008, 64] @ [64, 4096]), in the same run.
 *   <li>{@code synth <dir> <layers>}: writes a synthetic LLaMA-shaped base model (hidden 2048,
 *       intermediate 5504, vocab 32000, F32) and an r=64 adapter with a 36000-row embed/lm_head,
 *       streaming, so that {@code danlu merge} can then be run under a small -Xmx.
 * </ul>
 */
public final class MergeBench {
  private MergeBench() {}

  public static void main(String[] args) throws Exception {
    if (args[0].equals("gemm")) {
      gemm();
    } else {
      synth(Path.of(args[1]), Integer.parseInt(args[2]));
    }
  }

  static void gemm() {
    int out = 11008;
    int in = 4096;
    int r = 64;
    float[] w = new float[out * in];
    float[] a = new float[r * in];
    float[] b = new float[out * r];
    fill(a, 1);
    fill(b, 2);
    double flops = 2.0 * out * in * r + 2.0 * out * in;
    try (LoraDelta d = new LoraDelta(a, b, r, in, 2f)) {
      for (int it = 0; it < 3; it++) {
        // What Merge does: 16 MB row blocks, copied into ND4J and back.
        long t0 = System.nanoTime();
        int rowsPerBlock = Merge.blockElems / in;
        for (int r0 = 0; r0 < out; r0 += rowsPerBlock) {
          int n = Math.min(rowsPerBlock, out - r0);
          float[] block = java.util.Arrays.copyOfRange(w, r0 * in, (r0 + n) * in);
          d.addTo(block, r0, n);
        }
        double s = (System.nanoTime() - t0) / 1e9;
        System.out.printf("LoraDelta blocks: %.3f s  %.1f GFLOP/s%n", s, flops / s / 1e9);
      }
    }
    INDArray wa = Nd4j.create(w, new long[] {out, in}, DataType.FLOAT);
    INDArray aa = Nd4j.create(a, new long[] {r, in}, DataType.FLOAT);
    INDArray ba = Nd4j.create(b, new long[] {out, r}, DataType.FLOAT);
    for (int it = 0; it < 3; it++) {
      long t0 = System.nanoTime();
      Nd4j.gemm(ba, aa, wa, false, false, 2.0, 1.0);
      double s = (System.nanoTime() - t0) / 1e9;
      System.out.printf("ND4J gemm only : %.3f s  %.1f GFLOP/s%n", s, flops / s / 1e9);
    }
  }

  static void fill(float[] x, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (r.nextDouble() - 0.5) * 0.02f;
    }
  }

  static void synth(Path dir, int layers) throws Exception {
    int h = 2048;
    int inter = 5504;
    int vocab = 32000;
    int newVocab = 36000;
    int r = 64;
    Path base = dir.resolve("base");
    Path adapter = dir.resolve("adapter");
    java.nio.file.Files.createDirectories(base);
    java.nio.file.Files.writeString(
        base.resolve("config.json"),
        "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":"
            + h
            + ",\"intermediate_size\":"
            + inter
            + ",\"num_hidden_layers\":"
            + layers
            + ",\"num_attention_heads\":16,\"num_key_value_heads\":16,\"vocab_size\":"
            + vocab
            + ",\"rms_norm_eps\":1e-5,\"max_position_embeddings\":4096,\"model_type\":\"llama\","
            + "\"tie_word_embeddings\":false,\"torch_dtype\":\"float32\"}");
    SafeTensorsWriter.Builder b = SafeTensorsWriter.builder(base.resolve("model.safetensors"));
    b.declare("model.embed_tokens.weight", vocab, h);
    java.util.Map<String, FloatTensor> lora = new java.util.LinkedHashMap<>();
    for (int i = 0; i < layers; i++) {
      for (String p : AdapterConfig.LLAMA_TARGETS) {
        String m = PeftAdapter.llamaModule(i, p);
        int o = p.equals("gate_proj") || p.equals("up_proj") ? inter : h;
        int n = p.equals("down_proj") ? inter : h;
        b.declare(m + ".weight", o, n);
        float[] a = new float[r * n];
        float[] bb = new float[o * r];
        fill(a, i * 31 + p.hashCode());
        fill(bb, i * 37 + p.hashCode());
        lora.put(PeftAdapter.loraKey(m, 'A'), FloatTensor.of(a, r, n));
        lora.put(PeftAdapter.loraKey(m, 'B'), FloatTensor.of(bb, o, r));
      }
      b.declare("model.layers." + i + ".input_layernorm.weight", h);
      b.declare("model.layers." + i + ".post_attention_layernorm.weight", h);
    }
    b.declare("model.norm.weight", h);
    b.declare("lm_head.weight", vocab, h);
    float[] chunk = new float[1 << 20];
    fill(chunk, 99);
    try (SafeTensorsWriter w = b.open()) {
      while (w.currentTensor() != null) {
        long left = w.currentTensor().numel();
        while (left > 0) {
          int n = (int) Math.min(left, chunk.length);
          w.writeFloats(chunk, 0, n);
          left -= n;
        }
      }
    }
    float[] embed = new float[newVocab * h];
    fill(embed, 5);
    lora.put(PeftAdapter.EMBED_KEY, FloatTensor.of(embed, newVocab, h));
    lora.put(PeftAdapter.LM_HEAD_KEY, FloatTensor.of(embed, newVocab, h));
    new PeftAdapter(AdapterConfig.llama(r, 128, 0.05, base.toString()), lora).save(adapter);
    System.out.println("wrote " + base + " and " + adapter);
  }
}
