package dev.danlu.launch.progress;

import com.fasterxml.jackson.annotation.JsonCreator;
import org.apache.spark.scheduler.SparkListenerEvent;

/**
 * A {@link TrainingUpdate} on Spark's listener bus. Spark's event logging writes any listener event
 * as Jackson JSON with its class name ({@code "Event": "dev.danlu...TrainingUpdateEvent"}), so with
 * {@code spark.eventLog.enabled} the run's curves and events land in the application's event log,
 * where the History Server's {@link TrainingHistoryPlugin} reads them back.
 */
public record TrainingUpdateEvent(TrainingUpdate update) implements SparkListenerEvent {
  @JsonCreator
  public TrainingUpdateEvent {}
}
