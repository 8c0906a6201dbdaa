package dev.danlu.launch.progress;

import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.spark.SparkConf;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerEvent;
import org.apache.spark.status.AppHistoryServerPlugin;
import org.apache.spark.status.ElementTrackingStore;
import org.apache.spark.ui.SparkUI;
import org.apache.spark.util.kvstore.KVStore;
import org.apache.spark.util.kvstore.KVStoreIterator;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The Training tab in the Spark History Server, the way Spark SQL brings its tab there: the History
 * Server finds this class through {@code META-INF/services} (danlu's jar on its class path, e.g.
 * {@code SPARK_DAEMON_CLASSPATH}), replays the event log through {@link #createListeners}'s
 * listener, which stores every {@link TrainingUpdateEvent} in the application's KVStore, and {@link
 * #setupUI} adds the same Training page, rebuilt from those updates, to an application that has
 * any.
 */
public final class TrainingHistoryPlugin implements AppHistoryServerPlugin {
  @Override
  public scala.collection.immutable.Seq<SparkListener> createListeners(
      SparkConf conf, ElementTrackingStore store) {
    return CollectionConverters.asScala(List.<SparkListener>of(new Listener(store))).toList();
  }

  @Override
  public void setupUI(SparkUI ui) {
    KVStore store = ui.store().store();
    if (count(store) > 0) {
      ui.attachTab(new TrainingUiTab(ui, new Replayed(store), false));
    }
  }

  static long count(KVStore store) {
    try {
      return store.count(TrainingUpdateRecord.class);
    } catch (Exception e) {
      throw new IllegalStateException("cannot read the application's store", e);
    }
  }

  /** Writes each update of the event log into the KVStore, numbered in log order. */
  static final class Listener extends SparkListener {
    private final ElementTrackingStore store;
    private final AtomicLong seq = new AtomicLong();

    Listener(ElementTrackingStore store) {
      this.store = store;
    }

    @Override
    public void onOtherEvent(SparkListenerEvent event) {
      if (event instanceof TrainingUpdateEvent u) {
        store.write(new TrainingUpdateRecord(seq.getAndIncrement(), u.update()));
      }
    }
  }

  /** The board rebuilt from the stored updates (once; again only if more were stored). */
  static final class Replayed implements java.util.function.Supplier<ProgressBoard> {
    private final KVStore store;
    private long replayed = -1;
    private ProgressBoard board;

    Replayed(KVStore store) {
      this.store = store;
    }

    @Override
    public synchronized ProgressBoard get() {
      long n = count(store);
      if (board == null || n != replayed) {
        board = replay(store);
        replayed = n;
      }
      return board;
    }

    static ProgressBoard replay(KVStore store) {
      ProgressBoard b = null;
      try (KVStoreIterator<TrainingUpdateRecord> it =
          store.view(TrainingUpdateRecord.class).closeableIterator()) {
        while (it.hasNext()) {
          TrainingUpdate u = it.next().update;
          if (b == null) {
            b = new ProgressBoard(u.worldSize());
          }
          b.apply(u);
        }
      } catch (Exception e) {
        throw new IllegalStateException("cannot read the training updates of the event log", e);
      }
      return b == null ? new ProgressBoard(0) : b;
    }
  }
}
