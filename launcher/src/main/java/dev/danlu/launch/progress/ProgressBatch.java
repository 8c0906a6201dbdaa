package dev.danlu.launch.progress;

import com.fasterxml.jackson.annotation.JsonCreator;
import java.util.List;

/**
 * What one POST from a rank carries: every step report since the previous POST (in step order) and
 * the rank's events (rank 0's evaluations, checkpoints, resume).
 */
public record ProgressBatch(
    int rank, int attempt, List<RankProgress> reports, List<TrainingEvent> events) {
  @JsonCreator
  public ProgressBatch {
    reports = reports == null ? List.of() : List.copyOf(reports);
    events = events == null ? List.of() : List.copyOf(events);
  }
}
