package dev.danlu.launch.eval;

import dev.danlu.jobs.SparkSessions;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * Where {@code eval} gets its Spark context: a session from {@code --master}, else spark-submit's,
 * else local mode on every core (as {@code prep}); tests pass one shared context instead.
 */
public interface SparkRunner {
  /** The context for a run. */
  JavaSparkContext open(SparkConf conf);

  /** Called when the run is over (the default stops the session it made). */
  void release(JavaSparkContext jsc);

  /** Sessions made and stopped per run. */
  SparkRunner SESSION =
      new SparkRunner() {
        @Override
        public JavaSparkContext open(SparkConf conf) {
          return JavaSparkContext.fromSparkContext(
              SparkSession.builder()
                  .config(SparkSessions.withMaster(conf, null))
                  .getOrCreate()
                  .sparkContext());
        }

        @Override
        public void release(JavaSparkContext jsc) {
          jsc.stop();
        }
      };

  /** An existing context, left running (tests share one per class). */
  static SparkRunner shared(JavaSparkContext jsc) {
    return new SparkRunner() {
      @Override
      public JavaSparkContext open(SparkConf conf) {
        return jsc;
      }

      @Override
      public void release(JavaSparkContext ignored) {}
    };
  }
}
