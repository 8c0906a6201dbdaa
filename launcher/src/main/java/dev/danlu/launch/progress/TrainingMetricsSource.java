package dev.danlu.launch.progress;

import com.codahale.metrics.Gauge;
import com.codahale.metrics.MetricRegistry;
import org.apache.spark.metrics.source.Source;

/**
 * Spark metrics source {@code danlu.training}: the board's summary as gauges, so whatever sink the
 * cluster has configured (Prometheus servlet, Graphite, JMX, CSV) exports training progress next to
 * Spark's own driver metrics. Registered on the driver's metrics system.
 */
public final class TrainingMetricsSource implements Source {
  public static final String NAME = "danlu.training";
  private final MetricRegistry registry = new MetricRegistry();

  /** {@code attempt} is the board's: 1 for the first attempt, as on the console and the tab. */
  public TrainingMetricsSource(ProgressBoard board) {
    registry.register("step", (Gauge<Long>) () -> board.summary().step());
    registry.register("maxSteps", (Gauge<Long>) () -> board.summary().maxSteps());
    registry.register("loss", (Gauge<Double>) () -> board.summary().loss());
    registry.register("tokensPerSec", (Gauge<Double>) () -> board.summary().tokensPerSec());
    registry.register("etaSeconds", (Gauge<Double>) () -> board.summary().etaSeconds());
    registry.register(
        "slowestStepSeconds", (Gauge<Double>) () -> board.summary().slowestStepSeconds());
    registry.register("ranksReporting", (Gauge<Integer>) () -> board.summary().ranksReporting());
    registry.register("attempt", (Gauge<Integer>) board::attempt);
  }

  @Override
  public String sourceName() {
    return NAME;
  }

  @Override
  public MetricRegistry metricRegistry() {
    return registry;
  }
}
