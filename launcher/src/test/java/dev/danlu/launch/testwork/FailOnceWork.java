package dev.danlu.launch.testwork;

import dev.danlu.launch.RankContext;
import dev.danlu.launch.RankWork;
import dev.danlu.launch.smoke.RingSmokeWork;

/**
 * The smoke work, except that rank 1 throws after its third step on the first attempt only: the
 * launcher must run the stage again and the ranks resume from the checkpoint.
 */
public final class FailOnceWork implements RankWork {
  @Override
  public String run(RankContext ctx) throws Exception {
    RankContext wrapped =
        new RankContext(
            ctx.rank(),
            ctx.worldSize(),
            ctx.attempt(),
            ctx.peerAddresses(),
            ctx.jobSecret(),
            ctx.gpuAddresses(),
            ctx.configYaml(),
            ctx.configSource(),
            ctx.overrides(),
            (step, max, loss, tps, eta, sec) -> {
              ctx.progress().report(step, max, loss, tps, eta, sec);
              if (ctx.attempt() == 1 && ctx.rank() == 1 && step == 3) {
                throw new IllegalStateException("simulated GPU fault at step 3");
              }
            },
            ctx.listener());
    return new RingSmokeWork().run(wrapped);
  }
}
