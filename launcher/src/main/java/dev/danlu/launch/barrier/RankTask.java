package dev.danlu.launch.barrier;

import dev.danlu.launch.RankContext;
import dev.danlu.launch.RankWork;
import dev.danlu.launch.progress.HttpProgressReporter;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.resource.ResourceInformation;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.collection.Iterator;
import scala.runtime.AbstractFunction1;

/**
 * The body of one barrier task = one rank: bind a listener, rendezvous through {@code allGather},
 * then run the {@link RankWork} named by class. Exactly one {@code allGather} per task, outside any
 * try/catch, so every task makes the same barrier calls (a task that fails before it makes Spark
 * kill the others, which is what we want).
 */
final class RankTask extends AbstractFunction1<Iterator<Integer>, Iterator<String>>
    implements Serializable {
  private static final long serialVersionUID = 1L;
  private static final Logger LOG = LoggerFactory.getLogger(RankTask.class);

  private final String workClass;
  private final int worldSize;
  private final int attempt;
  private final byte[] jobSecret;
  private final String configYaml;
  private final String configSource;
  private final ArrayList<String> overrides;
  private final String progressUrl;
  private final String progressToken;

  RankTask(
      String workClass,
      int worldSize,
      int attempt,
      byte[] jobSecret,
      String configYaml,
      String configSource,
      List<String> overrides,
      String progressUrl,
      String progressToken) {
    this.workClass = workClass;
    this.worldSize = worldSize;
    this.attempt = attempt;
    this.jobSecret = jobSecret.clone();
    this.configYaml = configYaml;
    this.configSource = configSource;
    this.overrides = new ArrayList<>(overrides);
    this.progressUrl = progressUrl;
    this.progressToken = progressToken;
  }

  @Override
  public Iterator<String> apply(Iterator<Integer> partition) {
    BarrierTaskContext task = BarrierTaskContext.get();
    int rank = task.partitionId();
    // The executor's own address as the scheduler knows it: reachable from the other executors.
    String host = hostOf(task.getTaskInfos()[rank].address());
    ServerSocket listener = bind(host);
    String prefix = "[rank " + rank + "/" + worldSize + " attempt " + attempt + "]";
    String mine = host + ":" + listener.getLocalPort();
    LOG.info("{} listening on {}; waiting for {} peers (allGather)", prefix, mine, worldSize - 1);

    List<String> peers = Arrays.asList(task.allGather(mine));

    List<String> gpus = gpus(task);
    LOG.info("{} peers {} gpus {} on executor {}", prefix, peers, gpus, executorId());
    String summary;
    Thread worker = Thread.currentThread();
    // Spark kills the other tasks of a failed barrier stage without interrupting them; make the
    // kill visible to the work (interrupt) and free the port, so a rank blocked on a dead peer
    // exits instead of holding the slot the retry needs.
    Thread watchdog = killWatchdog(task, worker, listener, prefix);
    try (HttpProgressReporter progress =
        new HttpProgressReporter(progressUrl, progressToken, rank, attempt, prefix)) {
      RankContext ctx =
          new RankContext(
              rank,
              worldSize,
              attempt,
              peers,
              jobSecret,
              gpus,
              configYaml,
              configSource,
              overrides,
              progress,
              listener);
      summary = newWork().run(ctx);
    } catch (Throwable t) {
      watchdog.interrupt();
      closeQuietly(listener);
      Throwable root = RankFailure.rootCause(t);
      LOG.error("{} failed on {}: {}", prefix, host, root.toString(), t);
      throw new RankFailure(rank, worldSize, attempt, host, executorId(), t);
    }
    watchdog.interrupt();
    closeQuietly(listener);
    LOG.info("{} done: {}", prefix, summary);
    return scala.jdk.javaapi.CollectionConverters.asScala(
        List.of("rank " + rank + ": " + summary).iterator());
  }

  private static Thread killWatchdog(
      BarrierTaskContext task, Thread worker, ServerSocket listener, String prefix) {
    Thread t =
        new Thread(
            () -> {
              try {
                while (!task.isInterrupted()) {
                  Thread.sleep(500);
                }
              } catch (InterruptedException e) {
                return; // the work ended
              }
              LOG.warn("{} killed by Spark: interrupting the work", prefix);
              closeQuietly(listener);
              worker.interrupt();
            },
            "danlu-kill-watchdog");
    t.setDaemon(true);
    t.start();
    return t;
  }

  private RankWork newWork() throws ReflectiveOperationException {
    Class<?> c = Class.forName(workClass, true, Thread.currentThread().getContextClassLoader());
    return (RankWork) c.getDeclaredConstructor().newInstance();
  }

  /** Port 0: the kernel picks a free port, so executors sharing a host never clash. */
  private static ServerSocket bind(String host) {
    try {
      return new ServerSocket(0, 64, InetAddress.getByName(host));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot bind a rank listener on " + host, e);
    }
  }

  private static List<String> gpus(BarrierTaskContext task) {
    ResourceInformation gpu = task.resourcesJMap().get("gpu");
    return gpu == null ? List.of() : List.of(gpu.addresses());
  }

  private static String executorId() {
    org.apache.spark.SparkEnv env = org.apache.spark.SparkEnv.get();
    return env == null ? "?" : env.executorId();
  }

  static String hostOf(String address) {
    // BarrierTaskInfo.address is the executor host, possibly with a port; IPv6 comes bracketed.
    if (address.startsWith("[")) {
      return address.substring(1, address.indexOf(']'));
    }
    int colon = address.indexOf(':');
    return colon >= 0 && address.indexOf(':', colon + 1) < 0
        ? address.substring(0, colon)
        : address;
  }

  private static void closeQuietly(ServerSocket s) {
    try {
      s.close();
    } catch (IOException ignored) {
      // Closing a listener the work may already have closed.
    }
  }
}
