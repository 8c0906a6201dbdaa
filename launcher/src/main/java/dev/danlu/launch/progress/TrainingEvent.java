package dev.danlu.launch.progress;

import com.fasterxml.jackson.annotation.JsonCreator;

/**
 * Something an operator wants on the timeline: an attempt starting or failing, a rank's failure, a
 * committed checkpoint, an evaluation, a resume, an fp16 overflow skip, the end of training.
 *
 * @param kind one of the {@code KIND_*} constants
 * @param attempt the launcher attempt it happened in (1 for the first)
 * @param step the optimizer step it refers to (-1 when none)
 * @param timeMillis driver clock when the driver learnt of it
 * @param text what to show (a path, a cause)
 * @param value the event's number: eval loss, the loss scale after an overflow, NaN otherwise
 */
public record TrainingEvent(
    String kind, int attempt, long step, long timeMillis, String text, double value) {
  public static final String ATTEMPT = "attempt";
  public static final String ATTEMPT_FAILED = "attempt-failed";
  public static final String RANK_FAILED = "rank-failed";
  public static final String CHECKPOINT = "checkpoint";
  public static final String EVAL = "eval";
  public static final String RESUME = "resume";
  public static final String OVERFLOW = "overflow";
  public static final String FINISHED = "finished";

  @JsonCreator
  public TrainingEvent {}

  /** The same event stamped with the attempt and the driver's clock. */
  TrainingEvent at(int attempt, long now) {
    return new TrainingEvent(kind, attempt, step, now, text, value);
  }
}
