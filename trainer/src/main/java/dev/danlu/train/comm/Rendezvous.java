package dev.danlu.train.comm;

import java.util.List;

/**
 * How ranks learn each other's addresses before connecting: every rank contributes one string and
 * receives everyone's, indexed by rank. On Spark this is {@code BarrierTaskContext.allGather}; for
 * {@code train-local} it is {@link MasterRendezvous} (rank 0 listens on a known port, like
 * torchrun's MASTER_ADDR/MASTER_PORT).
 */
@FunctionalInterface
public interface Rendezvous {
  List<String> allGather(String mine);
}
