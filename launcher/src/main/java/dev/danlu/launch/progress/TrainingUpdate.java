package dev.danlu.launch.progress;

import com.fasterxml.jackson.annotation.JsonCreator;
import java.util.List;

/**
 * What a {@link ProgressBoard} learnt since its previous update: the curve from its first changed
 * step to the end ({@code points}; a replay replaces the curve from there), events that are new,
 * the ranks' newest reports. Applying a live board's updates in order to a fresh board rebuilds it.
 */
public record TrainingUpdate(
    int worldSize,
    int attempt,
    List<CurvePoint> points,
    List<TrainingEvent> events,
    List<RankProgress> ranks,
    long overflows,
    long lastReportMillis) {
  @JsonCreator
  public TrainingUpdate {
    points = points == null ? List.of() : List.copyOf(points);
    events = events == null ? List.of() : List.copyOf(events);
    ranks = ranks == null ? List.of() : List.copyOf(ranks);
  }

  boolean isEmpty() {
    return points.isEmpty() && events.isEmpty();
  }
}
