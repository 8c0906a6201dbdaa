package dev.danlu.launch.progress;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonProperty;
import org.apache.spark.util.kvstore.KVIndex;

/**
 * One {@link TrainingUpdate} as the History Server keeps it in the application's KVStore (in memory
 * or on disk with {@code spark.history.store.path}), keyed by its order in the event log. A class
 * with an annotated field, not a record: the KVStore indexes annotated fields and methods alike,
 * and a record would carry the annotation on both.
 */
public final class TrainingUpdateRecord {
  @KVIndex public final long seq;
  public final TrainingUpdate update;

  @JsonCreator
  public TrainingUpdateRecord(
      @JsonProperty("seq") long seq, @JsonProperty("update") TrainingUpdate update) {
    this.seq = seq;
    this.update = update;
  }
}
