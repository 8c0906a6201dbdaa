package dev.danlu.train.serve;

import dev.danlu.train.model.BatchDecoder;
import dev.danlu.train.model.Generator;
import dev.danlu.train.model.LlamaWeights;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Continuous batching: one thread owns the model and runs a loop of (1) admitting waiting sequences
 * into free slots — each gets its own KV cache (a {@link Generator}) filled by one block prefill,
 * and samples its first token from the prefill's logits — and (2) one {@link BatchDecoder} step
 * over every sequence holding a slot. A sequence that finishes or is cancelled leaves before the
 * next step, a new one joins at the next step; nobody waits for a whole batch to finish.
 *
 * <p>Other work on the model (embeddings) runs on the same thread between steps, so the weights
 * (and their half-precision widening scratch) are only ever read by one thread.
 *
 * <p>The system property {@code danlu.serve.step.delay.ms} (tests only) sleeps after every step, so
 * a test can act while a tiny model is still generating.
 */
public final class Engine implements AutoCloseable {
  /** Thrown by {@link #submit} when the waiting queue is full (HTTP 429). */
  public static final class QueueFullException extends Exception {
    QueueFullException(String message) {
      super(message);
    }
  }

  private final LlamaWeights w;
  private final BatchDecoder decoder;
  private final int maxBatch;
  private final int maxQueue;
  private final boolean storeKvBeforeRope;
  private final Metrics metrics;
  private final LinkedBlockingQueue<Object> inbox = new LinkedBlockingQueue<>(); // Sequence|Task
  private final Thread thread;
  private volatile boolean closed;
  private volatile Throwable failure;
  private final long stepDelayMs = Long.getLong("danlu.serve.step.delay.ms", 0);

  private record Task(Supplier<?> work, CompletableFuture<Object> result) {}

  /**
   * @param maxBatch sequences decoded together at most (slots)
   * @param maxQueue sequences waiting for a slot at most; more are refused
   */
  public Engine(
      LlamaWeights w, int maxBatch, int maxQueue, boolean storeKvBeforeRope, Metrics metrics) {
    if (maxQueue < 0) {
      throw new IllegalArgumentException("max queue must be >= 0, got " + maxQueue);
    }
    this.w = w;
    this.decoder = new BatchDecoder(w, maxBatch);
    this.maxBatch = maxBatch;
    this.maxQueue = maxQueue;
    this.storeKvBeforeRope = storeKvBeforeRope;
    this.metrics = metrics;
    this.thread = new Thread(this::loop, "danlu-serve-engine");
    thread.setDaemon(true);
    thread.start();
  }

  public int maxBatch() {
    return maxBatch;
  }

  /**
   * Queues the sequences of one request (all or none: a request with {@code n} choices needs n
   * places). A request may always wait if slots are free for it, so a full queue only refuses what
   * would wait behind {@code maxQueue} others.
   */
  public synchronized void submit(List<Sequence> seqs) throws QueueFullException {
    checkAlive();
    long waiting = metrics.queued.get();
    long free = Math.max(0, maxBatch - metrics.active.get() - waiting);
    if (waiting + seqs.size() - free > maxQueue) {
      throw new QueueFullException(
          "the server is busy: "
              + waiting
              + " sequence(s) already wait for one of "
              + maxBatch
              + " slots (--max-queue "
              + maxQueue
              + "); retry later");
    }
    metrics.queued.addAndGet(seqs.size());
    inbox.addAll(seqs);
  }

  /** Runs {@code work} on the engine thread between two steps. */
  @SuppressWarnings("unchecked")
  public <T> CompletableFuture<T> call(Supplier<T> work) {
    checkAlive();
    CompletableFuture<Object> f = new CompletableFuture<>();
    inbox.add(new Task(work, f));
    return (CompletableFuture<T>) (CompletableFuture<?>) f;
  }

  private void checkAlive() {
    if (failure != null) {
      throw new IllegalStateException("the engine stopped: " + failure, failure);
    }
    if (closed) {
      throw new IllegalStateException("the engine is closed");
    }
  }

  /** Whether the engine thread is running (for {@code /health}). */
  public boolean alive() {
    return !closed && failure == null && thread.isAlive();
  }

  private void loop() {
    List<Sequence> active = new ArrayList<>();
    try {
      while (!closed) {
        // 1. admit: tasks run, waiting sequences take free slots (block prefill each)
        Object item;
        while (active.size() < maxBatch && (item = inbox.poll()) != null) {
          admit(item, active);
        }
        // tasks queued behind sequences still run while all slots are busy
        if (active.size() == maxBatch) {
          runTasksOnly();
        }
        if (active.isEmpty()) {
          item = inbox.poll(100, TimeUnit.MILLISECONDS);
          if (item != null) {
            admit(item, active);
          }
          continue;
        }
        // 2. one batched step over the sequences holding a slot
        active.removeIf(this::dropIfCancelled);
        if (active.isEmpty()) {
          continue;
        }
        int b = active.size();
        Generator[] gens = new Generator[b];
        int[] tokens = new int[b];
        int[] positions = new int[b];
        for (int i = 0; i < b; i++) {
          Sequence s = active.get(i);
          gens[i] = s.generator;
          tokens[i] = s.lastToken();
          positions[i] = s.nextPosition();
        }
        float[][] logits = decoder.step(gens, tokens, positions);
        metrics.decodeSteps.increment();
        metrics.decodeRows.add(b);
        List<Sequence> done = new ArrayList<>();
        for (int i = 0; i < b; i++) {
          if (!accept(active.get(i), logits[i])) {
            done.add(active.get(i));
          }
        }
        active.removeAll(done);
        if (stepDelayMs > 0) {
          Thread.sleep(stepDelayMs);
        }
      }
      for (Sequence s : active) {
        finish(s, Sequence.Finish.CANCELLED);
      }
    } catch (Throwable t) {
      failure = t;
      System.err.println("danlu serve: the engine stopped: " + t);
      t.printStackTrace();
      for (Sequence s : active) {
        finish(s, Sequence.Finish.CANCELLED);
      }
    } finally {
      // nobody will serve what is still waiting
      Object item;
      while ((item = inbox.poll()) != null) {
        if (item instanceof Sequence s) {
          metrics.queued.decrementAndGet();
          s.listener.onFinish(Sequence.Finish.CANCELLED, 0);
        } else if (item instanceof Task t) {
          t.result().completeExceptionally(new IllegalStateException("the engine stopped"));
        }
      }
    }
  }

  private void runTasksOnly() {
    for (Object o : inbox.toArray()) {
      if (o instanceof Task t && inbox.remove(t)) {
        run(t);
      }
    }
  }

  private void run(Task t) {
    try {
      t.result().complete(t.work().get());
    } catch (RuntimeException | Error e) {
      t.result().completeExceptionally(e);
    }
  }

  private void admit(Object item, List<Sequence> active) {
    if (item instanceof Task t) {
      run(t);
      return;
    }
    Sequence s = (Sequence) item;
    if (s.cancelled()) {
      metrics.queued.decrementAndGet();
      metrics.cancelled.increment();
      s.listener.onFinish(Sequence.Finish.CANCELLED, 0);
      return;
    }
    // active first, then queued: submit() never sees the sequence in neither count
    metrics.active.incrementAndGet();
    metrics.queued.decrementAndGet();
    s.generator = new Generator(w, s.cacheLength(), storeKvBeforeRope);
    s.context = new int[s.prompt.length + s.maxNewTokens];
    System.arraycopy(s.prompt, 0, s.context, 0, s.prompt.length);
    float[] logits = s.generator.feed(s.prompt, 0, s.prompt.length, 0);
    metrics.promptTokens.add(s.prompt.length);
    if (accept(s, logits)) {
      active.add(s);
    }
  }

  private boolean dropIfCancelled(Sequence s) {
    if (s.cancelled()) {
      metrics.cancelled.increment();
      finish(s, Sequence.Finish.CANCELLED);
      return true;
    }
    return false;
  }

  /** Samples from {@code logits}, reports the token; false when the sequence is finished. */
  private boolean accept(Sequence s, float[] logits) {
    int len = s.prompt.length + s.generated;
    int token = s.sampler.next(logits, s.context, len);
    if (!s.firstTokenSeen) {
      s.firstTokenSeen = true;
      metrics.firstToken((System.nanoTime() - s.submittedNanos) / 1e9);
    }
    for (int stop : s.stopIds) {
      if (token == stop) {
        finish(s, Sequence.Finish.STOP);
        return false;
      }
    }
    s.context[len] = token;
    s.generated++;
    metrics.generated(System.nanoTime(), 1);
    boolean more;
    try {
      more = s.listener.onToken(token);
    } catch (RuntimeException e) {
      System.err.println("danlu serve: a listener failed: " + e);
      more = false;
    }
    if (!more) {
      finish(s, Sequence.Finish.STOP);
      return false;
    }
    if (s.generated == s.maxNewTokens) {
      finish(s, Sequence.Finish.LENGTH);
      return false;
    }
    return true;
  }

  private void finish(Sequence s, Sequence.Finish reason) {
    metrics.active.decrementAndGet();
    s.generator = null; // the cache goes with it
    try {
      s.listener.onFinish(reason, s.generated);
    } catch (RuntimeException e) {
      System.err.println("danlu serve: a listener failed: " + e);
    }
  }

  /** Stops the engine thread; waiting and active sequences finish as cancelled. */
  @Override
  public void close() throws InterruptedException {
    closed = true;
    thread.join(30_000);
  }
}
