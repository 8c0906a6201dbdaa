package dev.danlu.train.comm;

import java.io.DataOutputStream;
import java.io.FileOutputStream;
import java.io.IOException;

/**
 * A worker process for {@link TcpRingProcessTest}: joins the ring through the DANLU_* environment
 * (as train-local workers do), all-reduces a deterministic buffer and writes the result as raw
 * big-endian floats to the file given as argument.
 */
public final class RingWorkerMain {
  private RingWorkerMain() {}

  public static void main(String[] args) throws IOException {
    int size = Integer.parseInt(args[0]);
    MasterRendezvous rdv = MasterRendezvous.fromEnv(System.getenv(), 30_000);
    TcpRingOptions opts =
        TcpRingOptions.defaults().withConnectTimeoutMillis(30_000).withOpTimeoutMillis(30_000);
    try (TcpRingCommunicator c =
        TcpRingCommunicator.create(rdv.rank(), "127.0.0.1", rdv.secret(), rdv, opts)) {
      float[] b = new float[size];
      for (int i = 0; i < size; i++) {
        b[i] = CollectiveContract.input(c.rank(), i);
      }
      c.allReduce(b, 0, size, ReduceOp.SUM);
      c.barrier();
      try (DataOutputStream out = new DataOutputStream(new FileOutputStream(args[1]))) {
        for (float f : b) {
          out.writeFloat(f);
        }
      }
    }
  }
}
