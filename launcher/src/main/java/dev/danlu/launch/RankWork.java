package dev.danlu.launch;

/**
 * What one rank runs inside a Spark barrier task. The trainer's worker implements it; the launcher
 * creates it on the executor by class name through a public no-argument constructor, so an
 * implementation needs no Spark and need not be Serializable.
 *
 * <p>An implementation must resume from the newest committed checkpoint under its output directory:
 * after a failure the launcher runs the whole stage again and every rank starts over through {@link
 * #run}.
 */
public interface RankWork {
  /**
   * Runs rank {@code ctx.rank()} of {@code ctx.worldSize()} to completion and returns a short
   * summary (a line, not data: it travels back to the driver in the task result).
   */
  String run(RankContext ctx) throws Exception;
}
