package dev.danlu.train.model;

import dev.danlu.train.lora.LoraModule;
import dev.danlu.train.tensor.Buf;
import dev.danlu.train.tensor.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Token-by-token inference with a key/value cache (batch 1), for generation. It uses the same
 * kernels as training; LoRA adapters are merged into the weights beforehand (see {@code
 * LoraMerge}), so there is no adapter path here.
 *
 * <p>Half-precision weights (torch_dtype float16/bfloat16) are widened a layer at a time through
 * {@link LlamaWeights#linear} at every token: memory stays at 16 bits per weight plus one float32
 * layer, at the price of one widening pass over all weights per token (batch-1 decoding reads every
 * weight once per token anyway, so this costs a constant factor, not a different order).
 */
public final class Generator {
  private final LlamaWeights w;
  private final LlamaConfig c;
  private final int maxLen;
  private final boolean storeKvBeforeRope;
  private final INDArray[] keys; // per layer (maxLen, kvDim), rotated (or not: storeKvBeforeRope)
  private final INDArray[] values; // per layer (maxLen, kvDim)
  private final INDArray x; // (1, dim) residual stream
  private final INDArray xn; // (1, dim)
  private final INDArray rstd; // (1)
  private final INDArray q; // (1, dim)
  private final INDArray qRot; // (1, dim)
  private final INDArray k; // (1, kvDim)
  private final INDArray kRot; // (1, kvDim)
  private final INDArray v; // (1, kvDim)
  private final INDArray att; // (1, dim)
  private final INDArray tmp; // (1, dim)
  private final INDArray gate; // (1, ffn)
  private final INDArray up; // (1, ffn)
  private final INDArray h; // (1, ffn)
  private final INDArray logits; // (1, vocab)
  private final double[] scores; // (heads, maxLen)
  private final double[] keyRow; // (kvDim)
  private final double[] accRow; // (dim)
  private Rope rope;

  /**
   * A cache of {@code maxLen} positions; keys are stored before rotary when the rotary base can
   * change with the length ({@link #defaultStoreKvBeforeRope}).
   */
  public Generator(LlamaWeights w, int maxLen) {
    this(w, maxLen, defaultStoreKvBeforeRope(w.config()));
  }

  /**
   * @param storeKvBeforeRope the reference's {@code store_kv_before_rope}
   *     (attn_and_long_ctx_patches.py): cache keys before rotary and rotate every cached key with
   *     the current tables on read, so that when the tables change with the length (NTK alpha auto,
   *     dynamic NTK) all keys use the current base, as a full forward over the sequence would;
   *     false keeps each key rotated with the tables of the step that wrote it (what HF's
   *     generate() does with dynamic NTK)
   */
  public Generator(LlamaWeights w, int maxLen, boolean storeKvBeforeRope) {
    this.w = w;
    this.c = w.config();
    this.maxLen = maxLen;
    this.storeKvBeforeRope = storeKvBeforeRope;
    DataType dt = w.dataType();
    keys = new INDArray[c.numLayers()];
    values = new INDArray[c.numLayers()];
    for (int l = 0; l < keys.length; l++) {
      keys[l] = Nd4j.create(dt, maxLen, c.kvDim());
      values[l] = Nd4j.create(dt, maxLen, c.kvDim());
    }
    x = Nd4j.create(dt, 1, c.hiddenSize());
    xn = Nd4j.create(dt, 1, c.hiddenSize());
    rstd = Nd4j.create(dt, 1);
    q = Nd4j.create(dt, 1, c.hiddenSize());
    qRot = Nd4j.create(dt, 1, c.hiddenSize());
    k = Nd4j.create(dt, 1, c.kvDim());
    kRot = Nd4j.create(dt, 1, c.kvDim());
    v = Nd4j.create(dt, 1, c.kvDim());
    att = Nd4j.create(dt, 1, c.hiddenSize());
    tmp = Nd4j.create(dt, 1, c.hiddenSize());
    gate = Nd4j.create(dt, 1, c.intermediateSize());
    up = Nd4j.create(dt, 1, c.intermediateSize());
    h = Nd4j.create(dt, 1, c.intermediateSize());
    logits = Nd4j.create(dt, 1, c.vocabSize());
    scores = new double[c.numHeads() * maxLen];
    keyRow = new double[c.kvDim()];
    accRow = new double[c.hiddenSize()];
    // only dynamic NTK and NTK alpha auto tables depend on the sequence length; they grow in step()
    boolean dynamic = c.ropeDependsOnLength();
    int tableLen = dynamic ? Math.min(maxLen, c.maxPositionEmbeddings()) : maxLen;
    rope = Rope.forLength(c, tableLen, dt == DataType.FLOAT);
  }

  public int maxLen() {
    return maxLen;
  }

  /** The weights this generator reads (a {@link BatchDecoder} checks rows share them). */
  LlamaWeights weights() {
    return w;
  }

  /**
   * On when the rotary tables depend on the sequence length through NTK alpha auto: the reference's
   * recommended pairing, and what makes step logits equal a full forward's. Off for dynamic NTK,
   * matching HF 4.35's generate().
   */
  public static boolean defaultStoreKvBeforeRope(LlamaConfig c) {
    return c.ntk() != null && c.ntk().auto();
  }

  /** Whether keys are cached before rotary (see the constructor). */
  public boolean storeKvBeforeRope() {
    return storeKvBeforeRope;
  }

  /**
   * Feeds {@code token} at position {@code pos} (positions must come in order 0, 1, 2, ...) and
   * returns the next-token logits.
   */
  public float[] step(int token, int pos) {
    if (pos < 0 || pos >= maxLen) {
      throw new IllegalArgumentException("position " + pos + " outside the cache of " + maxLen);
    }
    growRope(pos);
    w.embed(new int[] {token}, x);
    for (int l = 0; l < c.numLayers(); l++) {
      LlamaWeights.Layer lw = w.layers()[l];
      Kernels.rmsnormForward(x, lw.inputNorm(), c.rmsNormEps(), xn, rstd);
      Nd4j.gemm(xn, w.linear(l, LoraModule.Q), q, false, true, 1.0, 0.0);
      Nd4j.gemm(xn, w.linear(l, LoraModule.K), k, false, true, 1.0, 0.0);
      Nd4j.gemm(xn, w.linear(l, LoraModule.V), v, false, true, 1.0, 0.0);
      cacheAndAttend(l, pos);
      Nd4j.gemm(att, w.linear(l, LoraModule.O), tmp, false, true, 1.0, 0.0);
      Kernels.addInPlace(x, tmp);
      Kernels.rmsnormForward(x, lw.postAttentionNorm(), c.rmsNormEps(), xn, rstd);
      Nd4j.gemm(xn, w.linear(l, LoraModule.GATE), gate, false, true, 1.0, 0.0);
      Nd4j.gemm(xn, w.linear(l, LoraModule.UP), up, false, true, 1.0, 0.0);
      Kernels.swigluForward(gate, up, h);
      Nd4j.gemm(h, w.linear(l, LoraModule.DOWN), tmp, false, true, 1.0, 0.0);
      Kernels.addInPlace(x, tmp);
    }
    Kernels.rmsnormForward(x, w.norm(), c.rmsNormEps(), xn, rstd);
    Nd4j.gemm(xn, w.lmHeadF32(), logits, false, true, 1.0, 0.0);
    return logits.reshape(-1).toFloatVector();
  }

  private void growRope(int pos) {
    if (pos >= rope.positions) {
      // dynamic NTK: HF 4.35 recomputes the tables (and the base) for the new sequence length;
      // keys already in the cache keep their old rotation, as in HF's generate()
      rope = Rope.forLength(c, pos + 1, w.dataType() == DataType.FLOAT);
    }
  }

  /** Rotates q (and k), writes k and v at {@code pos} of layer l's cache, attends into att. */
  private void cacheAndAttend(int l, int pos) {
    int hd = c.headDim();
    // with batch = seq = 1 the head-major layout equals the row layout
    Kernels.ropePermute(q, 1, 1, c.numHeads(), hd, rope.cos, rope.sin, pos, qRot);
    if (storeKvBeforeRope) {
      keys[l].getRow(pos).assign(k); // rotated on read, with the tables of the current length
    } else {
      Kernels.ropePermute(k, 1, 1, c.numKvHeads(), hd, rope.cos, rope.sin, pos, kRot);
      keys[l].getRow(pos).assign(kRot);
    }
    values[l].getRow(pos).assign(v);
    attend(l, pos);
  }

  /**
   * One decode step's attention for a row of {@link BatchDecoder}: this generator is the row's
   * sequence (its cache), {@code qIn}/{@code kIn}/{@code vIn} are the row's projections (1, dim) /
   * (1, kvDim), the result goes to {@code attOut} (1, dim). The same code as {@link #step} runs, so
   * the only arithmetic a batched step does differently is its gemms over several rows.
   */
  void attendRow(int l, int pos, INDArray qIn, INDArray kIn, INDArray vIn, INDArray attOut) {
    if (pos < 0 || pos >= maxLen) {
      throw new IllegalArgumentException("position " + pos + " outside the cache of " + maxLen);
    }
    if (l == 0) {
      growRope(pos);
    }
    q.assign(qIn);
    k.assign(kIn);
    v.assign(vIn);
    cacheAndAttend(l, pos);
    attOut.assign(att);
  }

  /**
   * Feeds {@code tokens[from, to)} at positions {@code pos0, pos0 + 1, ...} as one block (every
   * projection one gemm over the block's rows, attention causal within the block and over the cache
   * below {@code pos0}) and returns the logits after the last one. The cache must already hold
   * positions {@code 0 .. pos0 - 1}; positions from {@code pos0 + (to - from)} on are left alone,
   * so a prefix fed once can be continued by any number of different suffixes (each overwriting
   * only its own positions) — the few-shot prefix cache of {@code eval mc}.
   *
   * <p>Equal to {@link #step} token by token up to float rounding (the block's gemm and the tiled
   * attention sum in other orders); for a given block split the result is fixed. Rotary tables that
   * depend on the length (dynamic NTK, NTK alpha auto) are those of pos0 + n for the whole block,
   * as a forward over the block would use. Memory is linear in the block and the cache: the
   * attention runs through {@link TiledAttention#forwardSuffix}.
   */
  public float[] feed(int[] tokens, int from, int to, int pos0) {
    int n = to - from;
    if (n <= 0) {
      throw new IllegalArgumentException("empty block [" + from + ", " + to + ")");
    }
    if (pos0 < 0 || pos0 + n > maxLen) {
      throw new IllegalArgumentException(
          "positions " + pos0 + ".." + (pos0 + n - 1) + " outside the cache of " + maxLen);
    }
    if (pos0 + n > rope.positions) {
      rope = Rope.forLength(c, pos0 + n, w.dataType() == DataType.FLOAT);
    }
    DataType dt = w.dataType();
    int dim = c.hiddenSize();
    int kvDim = c.kvDim();
    int ffn = c.intermediateSize();
    int hd = c.headDim();
    INDArray xb = Nd4j.create(dt, n, dim); // residual stream of the block's rows
    INDArray xnb = Nd4j.create(dt, n, dim);
    INDArray rstdb = Nd4j.create(dt, n);
    INDArray qb = Nd4j.create(dt, n, dim);
    INDArray kb = Nd4j.create(dt, n, kvDim);
    INDArray vb = Nd4j.create(dt, n, kvDim);
    INDArray qHeads = Nd4j.create(dt, c.numHeads(), n, hd);
    INDArray kHeads = Nd4j.create(dt, c.numKvHeads(), n, hd);
    INDArray kRotb = Nd4j.create(dt, n, kvDim);
    INDArray attb = Nd4j.create(dt, n, dim);
    INDArray tmpb = Nd4j.create(dt, n, dim);
    INDArray gateb = Nd4j.create(dt, n, ffn);
    INDArray upb = Nd4j.create(dt, n, ffn);
    INDArray hb = Nd4j.create(dt, n, ffn);
    w.embed(java.util.Arrays.copyOfRange(tokens, from, to), xb);
    for (int l = 0; l < c.numLayers(); l++) {
      LlamaWeights.Layer lw = w.layers()[l];
      Kernels.rmsnormForward(xb, lw.inputNorm(), c.rmsNormEps(), xnb, rstdb);
      Nd4j.gemm(xnb, w.linear(l, LoraModule.Q), qb, false, true, 1.0, 0.0);
      Nd4j.gemm(xnb, w.linear(l, LoraModule.K), kb, false, true, 1.0, 0.0);
      Nd4j.gemm(xnb, w.linear(l, LoraModule.V), vb, false, true, 1.0, 0.0);
      // rotate into head-major layout (keys then back to rows, no second rotation, for the cache)
      Kernels.ropePermute(qb, 1, n, c.numHeads(), hd, rope.cos, rope.sin, pos0, qHeads);
      Kernels.ropePermute(kb, 1, n, c.numKvHeads(), hd, rope.cos, rope.sin, pos0, kHeads);
      Kernels.unpermuteRope(kHeads, 1, n, c.numKvHeads(), hd, null, null, 0, kRotb);
      keys[l]
          .get(NDArrayIndex.interval(pos0, pos0 + n), NDArrayIndex.all())
          .assign(storeKvBeforeRope ? kb : kRotb); // before rotary: rotated on read
      values[l].get(NDArrayIndex.interval(pos0, pos0 + n), NDArrayIndex.all()).assign(vb);
      attendBlock(l, pos0, n, qHeads, attb);
      Nd4j.gemm(attb, w.linear(l, LoraModule.O), tmpb, false, true, 1.0, 0.0);
      Kernels.addInPlace(xb, tmpb);
      Kernels.rmsnormForward(xb, lw.postAttentionNorm(), c.rmsNormEps(), xnb, rstdb);
      Nd4j.gemm(xnb, w.linear(l, LoraModule.GATE), gateb, false, true, 1.0, 0.0);
      Nd4j.gemm(xnb, w.linear(l, LoraModule.UP), upb, false, true, 1.0, 0.0);
      Kernels.swigluForward(gateb, upb, hb);
      Nd4j.gemm(hb, w.linear(l, LoraModule.DOWN), tmpb, false, true, 1.0, 0.0);
      Kernels.addInPlace(xb, tmpb);
    }
    // only the last row's logits are wanted
    x.assign(xb.getRow(n - 1).reshape(1, dim));
    Kernels.rmsnormForward(x, w.norm(), c.rmsNormEps(), xn, rstd);
    Nd4j.gemm(xn, w.lmHeadF32(), logits, false, true, 1.0, 0.0);
    return logits.reshape(-1).toFloatVector();
  }

  /**
   * Prompt tokens per {@link #feed} block in {@link #generate}: the block's activations (its rows
   * times the FFN width, three times) are bounded by this, the attention over the cache is the
   * tiled kernel's (linear in the length), so a 16K-token prompt needs no [16K, 16K] array.
   */
  public static final int PREFILL_BLOCK = 512;

  /**
   * Feeds {@code prompt} (non-empty; usually BOS + encoded text) in blocks of {@link
   * #PREFILL_BLOCK} (the prefill) and then samples up to {@code maxNewTokens} tokens, stopping
   * before any of {@code stopIds}. Returns the new tokens only. The sampler sees the prompt and the
   * tokens generated so far (its repetition penalty acts on both, as Hugging Face's acts on {@code
   * input_ids}).
   */
  public int[] generate(int[] prompt, int maxNewTokens, Sampler sampler, int... stopIds) {
    if (prompt.length == 0) {
      throw new IllegalArgumentException("prompt must hold at least one token (BOS)");
    }
    // the last sampled token is never fed back, so it needs no cache slot
    if (prompt.length + Math.max(0, maxNewTokens - 1) > maxLen) {
      throw new IllegalArgumentException(
          "prompt ("
              + prompt.length
              + ") + new tokens ("
              + maxNewTokens
              + ") exceed the cache length "
              + maxLen);
    }
    float[] next = null;
    for (int from = 0; from < prompt.length; from += PREFILL_BLOCK) {
      next = feed(prompt, from, Math.min(prompt.length, from + PREFILL_BLOCK), from);
    }
    int[] out = new int[maxNewTokens];
    int[] context = java.util.Arrays.copyOf(prompt, prompt.length + maxNewTokens);
    int n = 0;
    while (n < maxNewTokens) {
      int token = sampler.next(next, context, prompt.length + n);
      for (int stop : stopIds) {
        if (token == stop) {
          return java.util.Arrays.copyOf(out, n);
        }
      }
      context[prompt.length + n] = token;
      out[n++] = token;
      if (n < maxNewTokens) {
        next = step(token, prompt.length + n - 1);
      }
    }
    return out;
  }

  /**
   * {@link #attend} for the block's rows through the tiled kernel ({@link
   * TiledAttention#forwardSuffix}): row i (position pos0 + i) sees positions 0..pos0 + i. The
   * cached keys and values of positions 0..pos0 + n − 1 are laid out head-major once per layer
   * (keys stored before rotary rotated with the current tables, rounded as {@link #cachedKey}
   * rounds them), so memory stays linear in the length: no [n, pos0 + n] scores exist.
   *
   * @param qHeads the block's rotated queries, head-major (heads, n, headDim)
   * @param out the block's attention output rows (n, dim)
   */
  private void attendBlock(int l, int pos0, int n, INDArray qHeads, INDArray out) {
    int len = pos0 + n;
    int hd = c.headDim();
    int kvHeads = c.numKvHeads();
    DataType dt = qHeads.dataType();
    INDArray kRows = keys[l].get(NDArrayIndex.interval(0, len), NDArrayIndex.all());
    INDArray vRows = values[l].get(NDArrayIndex.interval(0, len), NDArrayIndex.all());
    INDArray kh = Nd4j.create(dt, kvHeads, len, hd);
    INDArray vh = Nd4j.create(dt, kvHeads, len, hd);
    INDArray oh = Nd4j.create(dt, c.numHeads(), n, hd);
    double[] cos = storeKvBeforeRope ? rope.cos : null;
    double[] sin = storeKvBeforeRope ? rope.sin : null;
    Kernels.ropePermute(kRows, 1, len, kvHeads, hd, cos, sin, 0, kh);
    Kernels.ropePermute(vRows, 1, len, kvHeads, hd, null, null, 0, vh);
    TiledAttention.forwardSuffix(
        c, n, len, LlamaState.grouped(c, 1, qHeads), kh, vh, LlamaState.grouped(c, 1, oh));
    Kernels.unpermuteRope(oh, 1, n, c.numHeads(), hd, null, null, 0, out);
    kh.close();
    vh.close();
    oh.close();
  }

  /**
   * att = softmax(q k^T / sqrt(hd)) v over cached positions 0..pos, per query head; cached keys are
   * rotated here when stored before rotary.
   */
  /**
   * Cached key of position {@code t}, rotated: as stored, or (storeKvBeforeRope) rotated now with
   * the current length's tables and rounded as a stored rotated key is.
   */
  private void cachedKey(Buf kb, int t, double[] kr) {
    int kvDim = c.kvDim();
    kb.read(t * kvDim, kr, kvDim);
    if (!storeKvBeforeRope) {
      return;
    }
    int hd = c.headDim();
    int half = hd / 2;
    int p = t * half;
    for (int kvOff = 0; kvOff < kvDim; kvOff += hd) {
      for (int i = 0; i < half; i++) {
        double x1 = kr[kvOff + i];
        double x2 = kr[kvOff + half + i];
        double cs = rope.cos[p + i];
        double sn = rope.sin[p + i];
        kr[kvOff + i] = kb.round(x1 * cs - x2 * sn);
        kr[kvOff + half + i] = kb.round(x2 * cs + x1 * sn);
      }
    }
  }

  private void attend(int l, int pos) {
    int hd = c.headDim();
    int kvDim = c.kvDim();
    int heads = c.numHeads();
    int group = heads / c.numKvHeads();
    double scale = 1.0 / Math.sqrt(hd);
    Buf qb = Buf.of(qRot);
    Buf kb = Buf.of(keys[l]);
    Buf vb = Buf.of(values[l]);
    double[] qv = accRow;
    qb.read(0, qv, c.hiddenSize());
    double[] kr = keyRow;
    for (int t = 0; t <= pos; t++) {
      cachedKey(kb, t, kr);
      for (int head = 0; head < heads; head++) {
        int kvOff = (head / group) * hd;
        int qOff = head * hd;
        double dot = 0;
        for (int i = 0; i < hd; i++) {
          dot += qv[qOff + i] * kr[kvOff + i];
        }
        scores[head * maxLen + t] = dot * scale;
      }
    }
    double[] sums = new double[heads];
    for (int head = 0; head < heads; head++) {
      int base = head * maxLen;
      double max = Double.NEGATIVE_INFINITY;
      for (int t = 0; t <= pos; t++) {
        max = Math.max(max, scores[base + t]);
      }
      double sum = 0;
      for (int t = 0; t <= pos; t++) {
        scores[base + t] = Math.exp(scores[base + t] - max);
        sum += scores[base + t];
      }
      sums[head] = sum;
    }
    double[] acc = accRow; // q is no longer needed
    java.util.Arrays.fill(acc, 0.0);
    for (int t = 0; t <= pos; t++) {
      vb.read(t * kvDim, kr, kvDim);
      for (int head = 0; head < heads; head++) {
        double p = scores[head * maxLen + t];
        int kvOff = (head / group) * hd;
        int qOff = head * hd;
        for (int i = 0; i < hd; i++) {
          acc[qOff + i] += p * kr[kvOff + i];
        }
      }
    }
    for (int head = 0; head < heads; head++) {
      for (int i = 0; i < hd; i++) {
        acc[head * hd + i] /= sums[head];
      }
    }
    Buf.of(att).write(0, acc, c.hiddenSize());
  }
}
