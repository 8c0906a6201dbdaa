package dev.danlu.train.recipe;

import dev.danlu.train.comm.Communicator;
import dev.danlu.train.config.TrainConfig;

/**
 * What one rank of a training run is given, like a torchrun worker's environment: its rank, the
 * world size, a communicator already joined with the other ranks, the bound config and where to
 * report progress. Spark's barrier task and {@code train-local}'s worker process both build one.
 */
public record TrainContext(
    int rank, int worldSize, Communicator comm, TrainConfig config, ProgressListener progress) {
  public TrainContext {
    if (comm.rank() != rank || comm.worldSize() != worldSize) {
      throw new IllegalArgumentException(
          "rank "
              + rank
              + " of "
              + worldSize
              + " given a communicator for rank "
              + comm.rank()
              + " of "
              + comm.worldSize());
    }
    progress = progress == null ? ProgressListener.NONE : progress;
  }
}
