package dev.danlu.train.recipe;

import dev.danlu.data.sft.SftExamples;
import dev.danlu.train.comm.Communicator;
import dev.danlu.train.config.TrainConfig;
import dev.danlu.train.data.BatchPlan;
import dev.danlu.train.data.GlobalOrder;
import dev.danlu.train.data.TrainData;
import dev.danlu.train.lora.CounterRng;
import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.lora.LoraMerge;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.Generator;
import dev.danlu.train.model.LlamaConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The iterations of {@code stage: ppo} inside the one {@link TrainLoop}, and the data they train
 * on. Iteration {@code i} takes the prompts of {@link BatchPlan} steps {@code [i·M, (i+1)·M)} (M =
 * {@code ppo_mini_batches}; each rank its own slice, as any recipe's rows), makes their rollouts
 * ({@link PpoRollouts}: sampled on a merged copy of the policy, scored by the policy, the reference
 * and the reward model), the KL-penalised rewards with the adaptive controller's coefficient, GAE
 * and advantages whitened over the whole iteration (all ranks), then trains {@code ppo_epochs}
 * passes of M optimizer steps, mini-batch j of a pass being plan step {@code i·M + j}'s prompts
 * (the M mini-batches in an order shuffled per pass, keyed by seed, iteration and pass).
 * Checkpoints fall on iteration boundaries; the KL coefficient travels in them ({@code
 * ppo_state.json}).
 *
 * <p>Sums over the iteration (advantage moments, statistics) are summed per micro-batch in double,
 * gathered exactly (each double as two floats, in an all-gather: no float addition) and added in
 * the global micro-batch order (plan step, rank, micro-batch), which is the same rows on any world
 * size with the same global batch: 1 rank and N ranks whiten with bit-identical moments.
 */
final class PpoIterations implements TrainLoop.Iterations, TrainData {
  static final String STATE_FILE = "ppo_state.json";

  private final TrainConfig cfg;
  private final Communicator comm;
  private final ModelSetup model;
  private final ValueHead head;
  private final LoraAdapter rm;
  private final RewardObjective rmHead;
  private final SftExamples prompts;
  private final int promptStride; // prompt p is example row p·stride (2 in pair data)
  private final long promptCount;
  private final int eos;
  private final int pad;
  private final String sha256;
  private final long version;
  private final PrintStream log;
  private final PpoMath.AdaptiveKl kl;
  private final Map<Long, PpoObjective.Rollout> rollouts = new HashMap<>();
  private final Map<List<Long>, Batch> batches = new HashMap<>();
  private long preparedIteration = -1;
  private long rolloutNanos;
  private long generateNanos;
  private long sampledTokens;
  private long iterationStart;

  PpoIterations(
      TrainConfig cfg,
      Communicator comm,
      ModelSetup model,
      ValueHead head,
      LoraAdapter rm,
      ValueHead rmValueHead,
      SftExamples prompts,
      int promptStride,
      int eos,
      int pad,
      long version,
      String sha256,
      PrintStream log) {
    this.cfg = cfg;
    this.comm = comm;
    this.model = model;
    this.head = head;
    this.rm = rm;
    this.rmHead = new RewardObjective(rmValueHead);
    this.prompts = prompts;
    this.promptStride = promptStride;
    this.promptCount = prompts.rows() / promptStride;
    this.eos = eos;
    this.pad = pad;
    this.version = version;
    this.sha256 = sha256;
    this.log = log;
    this.kl = new PpoMath.AdaptiveKl(cfg.initKlCoef(), cfg.ppoTarget(), cfg.klHorizon());
  }

  /** The rollout of a prompt in the current iteration (PpoObjective's lookup). */
  PpoObjective.Rollout rollout(long promptId) {
    PpoObjective.Rollout r = rollouts.get(promptId);
    if (r == null) {
      throw new IllegalStateException("no rollout of prompt " + promptId + " in this iteration");
    }
    return r;
  }

  double klCoef() {
    return kl.value();
  }

  private int stepsPerIteration() {
    return cfg.ppoEpochs() * cfg.ppoMiniBatches();
  }

  @Override
  public long totalSteps(BatchPlan plan) {
    long iterations =
        cfg.maxSteps() > 0
            ? cfg.maxSteps()
            : (long) Math.ceil(cfg.numTrainEpochs() * plan.stepsPerEpoch() / cfg.ppoMiniBatches());
    return Math.max(1, iterations) * stepsPerIteration();
  }

  @Override
  public long planStep(long step) {
    long it = step / stepsPerIteration();
    int pass = (int) (step % stepsPerIteration() / cfg.ppoMiniBatches());
    int j = (int) (step % cfg.ppoMiniBatches());
    // the pass's mini-batch order: a permutation keyed by (seed, iteration, pass), the same on
    // every rank
    GlobalOrder order =
        new GlobalOrder(CounterRng.key(cfg.seed(), 0x70706f4d42L, it), pass, cfg.ppoMiniBatches());
    return it * cfg.ppoMiniBatches() + order.rowAt(j);
  }

  @Override
  public boolean boundary(long done) {
    return done % stepsPerIteration() == 0;
  }

  @Override
  public void beforeStep(long step, BatchPlan plan) throws IOException {
    long it = step / stepsPerIteration();
    if (it == preparedIteration) {
      return;
    }
    long now = System.nanoTime();
    if (preparedIteration >= 0 && comm.rank() == 0) {
      log.printf(
          Locale.ROOT,
          "[rank 0] ppo iteration %d: rollouts %.2f s (sampling %.2f s, %.1f tokens/s; scoring and"
              + " advantages %.2f s), training %.2f s%n",
          preparedIteration + 1,
          rolloutNanos / 1e9,
          generateNanos / 1e9,
          sampledTokens / (generateNanos / 1e9),
          (rolloutNanos - generateNanos) / 1e9,
          (now - iterationStart - rolloutNanos) / 1e9);
    }
    iterationStart = now;
    prepare(it, plan);
    rolloutNanos = System.nanoTime() - now;
    preparedIteration = it;
  }

  /** Rollouts, rewards, advantages of iteration {@code it} for this rank's prompts. */
  private void prepare(long it, BatchPlan plan) throws IOException {
    rollouts.clear();
    batches.clear();
    int mb = cfg.ppoMiniBatches();
    int accum = plan.accumulationSteps();
    int rank = comm.rank();
    LlamaConfig c = model.config();
    // rollouts with a merged copy of the policy: Generator runs merged weights only, and one merge
    // per iteration costs one pass over the targeted weights while every sampled token costs a
    // pass over all of them (see docs/alignment.md)
    int maxPrompt = 0;
    List<long[]> groups = new ArrayList<>();
    for (int j = 0; j < mb; j++) {
      for (int m = 0; m < accum; m++) {
        groups.add(plan.rowsFor(it * mb + j, rank, m));
      }
    }
    List<List<int[]>> groupPrompts = new ArrayList<>();
    for (long[] ids : groups) {
      List<int[]> ps = new ArrayList<>();
      for (long id : ids) {
        int[] q = prompt(id);
        ps.add(q);
        maxPrompt = Math.max(maxPrompt, q.length);
      }
      groupPrompts.add(ps);
    }
    if (maxPrompt + cfg.maxNewTokens() > c.maxPositionEmbeddings()) {
      throw new IllegalArgumentException(
          "a prompt of "
              + maxPrompt
              + " tokens + max_new_tokens "
              + cfg.maxNewTokens()
              + " exceed the model's max_position_embeddings "
              + c.maxPositionEmbeddings()
              + "; lower max_new_tokens or prepare the prompts with a smaller --max-seq-length");
    }
    Generator gen =
        new Generator(
            LoraMerge.merge(model.weights(), model.adapter()), maxPrompt + cfg.maxNewTokens());
    StateCache states = new StateCache(c, model.adapter().config, false, cfg.attention());
    LlamaConfig rmConfig = model.weights().config().withVocabSize(rm.vocabSize());
    StateCache rmStates = new StateCache(rmConfig, rm.config, false, cfg.attention());
    List<PpoRollouts.Scored> scored = new ArrayList<>();
    long tokens = 0;
    generateNanos = 0;
    for (int g = 0; g < groups.size(); g++) {
      long[] ids = groups.get(g);
      List<int[]> responses = new ArrayList<>();
      long g0 = System.nanoTime();
      for (int k = 0; k < ids.length; k++) {
        int[] r =
            PpoRollouts.sample(
                gen,
                groupPrompts.get(g).get(k),
                cfg.maxNewTokens(),
                eos,
                PpoRollouts.key(cfg.seed(), it, ids[k]));
        responses.add(r);
        tokens += r.length;
      }
      generateNanos += System.nanoTime() - g0;
      Batch b = PpoRollouts.batch(groupPrompts.get(g), responses, ids, pad);
      scored.add(
          PpoRollouts.score(
              model.weights(),
              model.adapter(),
              head,
              states.get(b.batch(), b.seq()),
              rm,
              rmHead,
              rmStates.get(b.batch(), b.seq()),
              b));
    }
    // rewards with the current KL coefficient, GAE per sample
    double coef = kl.value();
    List<PpoMath.Gae> gaes = new ArrayList<>();
    double[][] first = new double[groups.size()][];
    double[][] stats = new double[groups.size()][];
    for (int g = 0; g < scored.size(); g++) {
      PpoRollouts.Scored s = scored.get(g);
      double[][] rewards =
          PpoMath.rewards(s.scores(), s.logprobs(), s.refLogprobs(), s.mask(), coef);
      PpoMath.Gae gae =
          PpoMath.gaeUnwhitened(s.values(), rewards, s.mask(), cfg.gamma(), cfg.lam());
      gaes.add(gae);
      first[g] = PpoMath.maskedMoments(gae.advantages(), s.mask(), Double.NaN);
      // samples, Σ score, Σ per-sample KL (Σ_t log π − log π_ref: TRL's objective/kl), Σ entropy
      // (per token), response tokens
      double[] st = new double[5];
      for (int i = 0; i < s.scores().length; i++) {
        st[0] += 1;
        st[1] += s.scores()[i];
        for (int t = 0; t < s.mask()[i].length; t++) {
          if (s.mask()[i][t] != 0) {
            st[2] += s.logprobs()[i][t] - s.refLogprobs()[i][t];
            st[4] += 1;
          }
        }
        st[3] += s.entropy()[i];
      }
      stats[g] = st;
    }
    double[] m1 = globalSums(first, mb, accum);
    double mean = m1[1] / m1[0];
    double[][] second = new double[groups.size()][];
    for (int g = 0; g < scored.size(); g++) {
      second[g] = PpoMath.maskedMoments(gaes.get(g).advantages(), scored.get(g).mask(), mean);
    }
    double var = PpoMath.variance(m1[0], globalSums(second, mb, accum)[1]);
    double[] st = globalSums(stats, mb, accum);
    for (int g = 0; g < scored.size(); g++) {
      PpoRollouts.Scored s = scored.get(g);
      PpoMath.Gae gae = gaes.get(g);
      PpoMath.whiten(gae.advantages(), mean, var);
      long[] ids = s.batch().sampleIds();
      for (int i = 0; i < ids.length; i++) {
        rollouts.put(
            ids[i],
            new PpoObjective.Rollout(
                s.logprobs()[i], s.values()[i], gae.advantages()[i], gae.returns()[i]));
      }
      batches.put(key(ids), s.batch());
    }
    sampledTokens = tokens;
    double meanKl = st[2] / st[0];
    if (cfg.adapKlCtrl()) {
      // TRL updates after the batch's step with the rollouts' KL, n_steps = the batch's samples
      kl.update(meanKl, (int) st[0]);
    }
    if (comm.rank() == 0) {
      log.printf(
          Locale.ROOT,
          "[rank 0] ppo iteration %d: objective/scores %.4f objective/kl %.4f objective/kl_coef"
              + " %.4f objective/entropy %.4f response_length %.2f (%d samples; rank 0 sampled %d"
              + " tokens)%n",
          it + 1,
          st[1] / st[0],
          meanKl,
          coef,
          st[3] / st[4],
          st[4] / st[0],
          (long) st[0],
          tokens);
    }
  }

  /**
   * Σ over every rank's micro-batch of {@code local[k]} (k = j·accum + m), bit-identical on any
   * world size: exact all-gather, then sums in the order (plan step j, rank, micro-batch m).
   */
  private double[] globalSums(double[][] local, int mb, int accum) {
    int width = local[0].length;
    int world = comm.worldSize();
    int chunk = local.length * width * 2;
    float[] buf = new float[chunk * world];
    int off = comm.rank() * chunk;
    for (double[] row : local) {
      for (double d : row) {
        float hi = (float) d;
        buf[off++] = hi;
        buf[off++] = (float) (d - hi);
      }
    }
    comm.allGather(buf, 0, chunk);
    double[] out = new double[width];
    for (int j = 0; j < mb; j++) {
      for (int r = 0; r < world; r++) {
        for (int m = 0; m < accum; m++) {
          int base = r * chunk + (j * accum + m) * width * 2;
          for (int x = 0; x < width; x++) {
            out[x] += (double) buf[base + 2 * x] + (double) buf[base + 2 * x + 1];
          }
        }
      }
    }
    return out;
  }

  /** Prompt {@code id}: the -100-labelled prefix of its example row (BOS + Alpaca-2 prompt). */
  int[] prompt(long id) throws IOException {
    if (id < 0 || id >= promptCount) {
      throw new IndexOutOfBoundsException("prompt " + id + " of " + promptCount);
    }
    SftExamples.Example e = prompts.read(id * promptStride);
    int q = 0;
    while (q < e.labels().length && e.labels()[q] == SftExamples.IGNORE_INDEX) {
      q++;
    }
    if (q == 0) {
      throw new IllegalStateException("example " + id * promptStride + " has no prompt tokens");
    }
    return Arrays.copyOf(e.inputIds(), q);
  }

  private static List<Long> key(long[] ids) {
    List<Long> k = new ArrayList<>(ids.length);
    for (long id : ids) {
      k.add(id);
    }
    return k;
  }

  @Override
  public void save(Path dir) throws IOException {
    Files.writeString(
        dir.resolve(STATE_FILE),
        String.format(Locale.ROOT, "{\"kl_coef\": %s}%n", Double.toString(kl.value())),
        StandardCharsets.UTF_8);
  }

  @Override
  public void restore(Path dir) throws IOException {
    Path f = dir.resolve(STATE_FILE);
    if (!Files.isRegularFile(f)) {
      throw new IOException(
          f
              + " is missing: "
              + dir
              + " was not written by stage ppo (its KL coefficient is lost); resume with the"
              + " output_dir of a ppo run or start in an empty one");
    }
    String s = Files.readString(f, StandardCharsets.UTF_8);
    java.util.regex.Matcher m =
        java.util.regex.Pattern.compile("\"kl_coef\"\\s*:\\s*([-+0-9.eE]+)").matcher(s);
    if (!m.find()) {
      throw new IOException(f + ": no kl_coef number in " + s.strip());
    }
    kl.restore(Double.parseDouble(m.group(1)));
  }

  // --- TrainData: the rows are prompts; a training micro-batch is its rollouts ---

  @Override
  public long trainRows() {
    return promptCount;
  }

  @Override
  public long validationRows() {
    return 0; // PPO's progress is the rollouts' reward, logged per iteration
  }

  @Override
  public Batch trainBatch(long[] rows, long step) {
    Batch b = batches.get(key(rows));
    if (b == null) {
      throw new IllegalStateException(
          "no rollouts for prompts " + Arrays.toString(rows) + " at step " + step);
    }
    return new Batch(
        b.batch(), b.seq(), b.inputIds(), b.attentionMask(), b.labels(), b.sampleIds(), step, true);
  }

  @Override
  public Batch validationBatch(long[] rows) {
    throw new UnsupportedOperationException("stage ppo has no validation batches");
  }

  @Override
  public long version() {
    return version;
  }

  @Override
  public String sha256() {
    return sha256;
  }

  @Override
  public String describe() {
    return String.format(
        Locale.ROOT,
        "%d prompts; per iteration %d global batch(es) of prompts, %d epoch(s), up to %d new tokens,"
            + " LoRA rollouts on a merged copy",
        promptCount,
        cfg.ppoMiniBatches(),
        cfg.ppoEpochs(),
        cfg.maxNewTokens());
  }

  @Override
  public void close() throws IOException {
    prompts.close();
  }
}
