package dev.danlu.train.comm;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/** Runs one task per rank on its own thread and returns their results in rank order. */
public final class RankThreads {
  public interface RankTask<T> {
    T run(int rank) throws Exception;
  }

  private RankThreads() {}

  public static <T> List<T> run(int n, RankTask<T> task) throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(n);
    try {
      List<Future<T>> fs = new ArrayList<>();
      for (int r = 0; r < n; r++) {
        int rank = r;
        fs.add(pool.submit(() -> task.run(rank)));
      }
      List<T> out = new ArrayList<>();
      for (Future<T> f : fs) {
        out.add(f.get(120, TimeUnit.SECONDS));
      }
      return out;
    } finally {
      pool.shutdownNow();
    }
  }

  /** A ring of n TCP ranks on 127.0.0.1, joined by threads; close every element after use. */
  public static List<TcpRingCommunicator> tcpRing(int n, byte[] secret, TcpRingOptions opts)
      throws Exception {
    List<RingListener> ls = new ArrayList<>();
    List<String> addrs = new ArrayList<>();
    for (int r = 0; r < n; r++) {
      RingListener l = RingListener.bind("127.0.0.1", 0);
      ls.add(l);
      addrs.add(l.address());
    }
    return run(n, r -> ls.get(r).join(r, addrs, secret, opts));
  }
}
