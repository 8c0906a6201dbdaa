package dev.danlu.train.recipe;

import dev.danlu.train.config.ConfigException;
import dev.danlu.train.config.TrainConfig;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.TreeMap;

/**
 * The recipe registry: every {@link Recipe} on the class path, by stage. {@code train}, {@code
 * train-local} workers and the Spark rank task all pick their recipe here from the config.
 */
public final class Recipes {
  private Recipes() {}

  /** Every known recipe by its stage name. */
  public static Map<String, Recipe> all() {
    Map<String, Recipe> byStage = new TreeMap<>();
    for (Recipe r : ServiceLoader.load(Recipe.class, Recipe.class.getClassLoader())) {
      Recipe old = byStage.put(r.stage(), r);
      if (old != null) {
        throw new IllegalStateException(
            "two recipes for stage '"
                + r.stage()
                + "': "
                + old.getClass().getName()
                + " and "
                + r.getClass().getName());
      }
    }
    return byStage;
  }

  /** The recipe the config's {@code stage} names; fails naming the key and the known stages. */
  public static Recipe forConfig(TrainConfig cfg) {
    Map<String, Recipe> all = all();
    Recipe r = all.get(cfg.stage());
    if (r == null) {
      throw new ConfigException(
          "stage: '" + cfg.stage() + "' is not a recipe; known stages: " + all.keySet());
    }
    return r;
  }
}
