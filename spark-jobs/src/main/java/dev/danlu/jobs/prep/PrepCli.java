package dev.danlu.jobs.prep;

import java.io.IOException;
import java.io.PrintStream;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * {@code danlu prep}: options and the tokenizer are checked before Spark starts; then the job runs
 * in a SparkSession (the master from {@code --master}, else spark-submit's, else local[*]). Exit
 * codes: 0 done, 1 refused or failed (message on stderr), 2 usage error.
 */
public final class PrepCli {
  private PrepCli() {}

  public static void main(String[] args) throws Exception {
    System.exit(run(args));
  }

  public static int run(String[] args) throws Exception {
    return run(args, System.out, System.err);
  }

  static int run(String[] args, PrintStream out, PrintStream err) throws Exception {
    PrepOptions o;
    try {
      o = PrepOptions.parse(args);
    } catch (PrepOptions.UsageException e) {
      if (!e.getMessage().isEmpty()) {
        err.println("danlu prep: " + e.getMessage());
      }
      err.print(PrepOptions.USAGE);
      return e.getMessage().isEmpty() ? 0 : 2;
    }
    TokenizerInfo tok;
    try {
      tok = TokenizerInfo.load(o.tokenizer(), new Configuration());
    } catch (IOException e) {
      err.println("danlu prep: --tokenizer " + o.tokenizer() + ": " + e.getMessage());
      return 1;
    }
    out.printf(
        "prep: tokenizer %s (sha256 %s, %d pieces, bos %d, eos %d)%n",
        o.tokenizer(), tok.sha256(), tok.vocabSize(), tok.bosId(), tok.eosId());
    SparkConf conf = new SparkConf().setAppName("danlu prep");
    if (o.master() != null) {
      conf.setMaster(o.master());
    } else if (!conf.contains("spark.master")) {
      conf.setMaster("local[*]");
    }
    SparkSession spark = SparkSession.builder().config(conf).getOrCreate();
    try {
      PrepJob.run(JavaSparkContext.fromSparkContext(spark.sparkContext()), o, tok, out);
      return 0;
    } catch (IOException e) {
      // Our errors name the file and what to do; a stack trace would only bury that.
      err.println("danlu prep: " + e.getMessage());
      return 1;
    } finally {
      spark.stop();
    }
  }
}
