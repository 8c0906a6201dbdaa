package dev.danlu.train.serve;

import dev.danlu.train.model.Generator;
import dev.danlu.train.model.Sampler;

/**
 * One generation in the {@link Engine}: a prompt, how many tokens it may add, its own sampler (its
 * own seeded random stream, so a sequence's draws do not depend on who it is batched with) and the
 * token ids that end it. The engine thread owns everything but {@link #cancel}.
 */
public final class Sequence {
  /** Why a sequence ended, as OpenAI's {@code finish_reason} names it (cancelled: not sent). */
  public enum Finish {
    STOP("stop"),
    LENGTH("length"),
    CANCELLED("cancelled");

    public final String openai;

    Finish(String openai) {
      this.openai = openai;
    }
  }

  /** What the engine reports, on its own thread; keep it short (it delays every sequence). */
  public interface Listener {
    /** A generated token (never a stop id); false ends the sequence (a stop string matched). */
    boolean onToken(int token);

    /** The sequence ended; {@code completionTokens} counts the tokens given to onToken. */
    void onFinish(Finish reason, int completionTokens);
  }

  final int[] prompt;
  final int maxNewTokens;
  final Sampler sampler;
  final int[] stopIds;
  final Listener listener;
  final long submittedNanos;
  private volatile boolean cancelled;

  // engine thread only
  Generator generator;
  int[] context; // prompt + generated
  int generated;
  boolean firstTokenSeen;

  /**
   * @param prompt the ids fed before generating (BOS first)
   * @param maxNewTokens at least 1
   */
  public Sequence(
      int[] prompt, int maxNewTokens, Sampler sampler, int[] stopIds, Listener listener) {
    if (prompt.length == 0) {
      throw new IllegalArgumentException("a prompt holds at least one token (BOS)");
    }
    if (maxNewTokens < 1) {
      throw new IllegalArgumentException("max new tokens must be >= 1, got " + maxNewTokens);
    }
    this.prompt = prompt.clone();
    this.maxNewTokens = maxNewTokens;
    this.sampler = sampler;
    this.stopIds = stopIds.clone();
    this.listener = listener;
    this.submittedNanos = System.nanoTime();
  }

  /** Ends the sequence at the engine's next step, freeing its slot (any thread). */
  public void cancel() {
    cancelled = true;
  }

  public boolean cancelled() {
    return cancelled;
  }

  /** Prompt plus new tokens, minus the last token (sampled, never fed): the cache it needs. */
  int cacheLength() {
    return prompt.length + maxNewTokens - 1;
  }

  /** The position the last generated token is fed at. */
  int nextPosition() {
    return prompt.length + generated - 1;
  }

  int lastToken() {
    return context[prompt.length + generated - 1];
  }
}
