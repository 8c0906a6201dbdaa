package dev.danlu.jobs;

import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;

/** How every danlu Spark command gets its session: the master given, spark-submit's, or local. */
public final class SparkSessions {
  private SparkSessions() {}

  /**
   * A session named {@code appName} on {@code master} when given, else on spark-submit's master
   * ({@code spark.master}), else {@code local[*]}.
   */
  public static SparkSession open(String appName, String master) {
    SparkConf conf = new SparkConf().setAppName(appName);
    return SparkSession.builder().config(withMaster(conf, master)).getOrCreate();
  }

  /** {@code conf} with {@code master} set when given, else spark-submit's, else local[*]. */
  public static SparkConf withMaster(SparkConf conf, String master) {
    if (master != null) {
      conf.setMaster(master);
    } else if (!conf.contains("spark.master")) {
      conf.setMaster("local[*]");
    }
    return conf;
  }
}
