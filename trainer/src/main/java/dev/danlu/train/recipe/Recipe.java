package dev.danlu.train.recipe;

import java.io.IOException;
import java.io.PrintStream;

/**
 * A training recipe: what the config key {@code stage} selects (LLaMA-Factory's names: {@code pt},
 * {@code sft}, {@code rm}, {@code dpo}, {@code ppo}). A recipe loads its model and data, picks its
 * {@link Objective} and hands them to {@link TrainLoop}; everything else is the loop's.
 *
 * <p>Recipes are found with {@link java.util.ServiceLoader}: a new one is a class implementing this
 * (public, no-argument constructor) and a line in {@code
 * META-INF/services/dev.danlu.train.recipe.Recipe}; no other class changes.
 */
public interface Recipe {
  /** The {@code stage} value that selects this recipe. */
  String stage();

  /** Runs rank {@code ctx.rank()} to the end of training (collective: every rank calls it). */
  TrainLoop.Result run(TrainContext ctx, PrintStream log) throws IOException;
}
