package dev.danlu.launch.trainer;

import dev.danlu.launch.JobSecret;
import dev.danlu.launch.RankContext;
import dev.danlu.train.comm.CommException;
import dev.danlu.train.comm.Rendezvous;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The trainer's {@link Rendezvous} (an all-gather of one string per rank) carried over the
 * listeners the launcher bound and published before the barrier's allGather: every rank sends its
 * string to every other rank's listener, then accepts one message from each. Messages carry an HMAC
 * of the job secret bound to (sender, receiver, attempt, payload), so a stranger on a port is
 * dropped and waiting continues. The TCP ring then listens on a port of its own, so no rank ever
 * connects to a socket that is being closed.
 */
final class ListenerRendezvous implements Rendezvous {
  private static final int MAGIC = 0xDA1E0002;
  private static final int TIMEOUT_MILLIS = 120_000;
  private static final int MAX_STRANGERS = 16;
  private static final int MAX_PAYLOAD = 4096;

  private final RankContext ctx;

  ListenerRendezvous(RankContext ctx) {
    this.ctx = ctx;
  }

  @Override
  public List<String> allGather(String mine) {
    int w = ctx.worldSize();
    int me = ctx.rank();
    String[] all = new String[w];
    all[me] = mine;
    try {
      // Sends first: every listener was bound before the barrier allGather, so connecting succeeds
      // from the kernel's backlog and a small message fits the socket buffer without a reader.
      for (int p = 0; p < w; p++) {
        if (p != me) {
          send(p, mine);
        }
      }
      ctx.listener().setSoTimeout(TIMEOUT_MILLIS);
      int strangers = 0;
      for (int got = 0; got < w - 1; ) {
        Socket s;
        try {
          s = ctx.listener().accept();
        } catch (SocketTimeoutException e) {
          throw new CommException(
              ctx.logPrefix()
                  + " rendezvous: heard from "
                  + got
                  + " of "
                  + (w - 1)
                  + " peers within "
                  + TIMEOUT_MILLIS / 1000
                  + "s; have "
                  + Arrays.toString(all),
              e);
        }
        try (s) {
          s.setSoTimeout(10_000);
          DataInputStream in = new DataInputStream(s.getInputStream());
          int magic = in.readInt();
          int from = in.readInt();
          int len = in.readInt();
          if (magic != MAGIC
              || from < 0
              || from >= w
              || from == me
              || all[from] != null
              || len < 0
              || len > MAX_PAYLOAD) {
            throw new IOException("not a rank of this job");
          }
          String payload = new String(in.readNBytes(len), java.nio.charset.StandardCharsets.UTF_8);
          byte[] mac = in.readNBytes(32);
          if (!JobSecret.matches(JobSecret.mac(ctx.jobSecret(), label(from, me, payload)), mac)) {
            throw new IOException("bad authentication");
          }
          all[from] = payload;
          got++;
        } catch (IOException e) {
          if (++strangers > MAX_STRANGERS) {
            throw new CommException(
                ctx.logPrefix() + " rendezvous: more than " + MAX_STRANGERS + " bad connections",
                e);
          }
        }
      }
    } catch (IOException e) {
      throw new CommException(ctx.logPrefix() + " rendezvous failed: " + e.getMessage(), e);
    }
    return new ArrayList<>(Arrays.asList(all));
  }

  private void send(int peer, String payload) throws IOException {
    String address = ctx.peerAddresses().get(peer);
    int colon = address.lastIndexOf(':');
    InetSocketAddress a =
        new InetSocketAddress(
            address.substring(0, colon), Integer.parseInt(address.substring(colon + 1)));
    try (Socket s = new Socket()) {
      s.connect(a, TIMEOUT_MILLIS);
      DataOutputStream out = new DataOutputStream(s.getOutputStream());
      byte[] bytes = payload.getBytes(java.nio.charset.StandardCharsets.UTF_8);
      out.writeInt(MAGIC);
      out.writeInt(ctx.rank());
      out.writeInt(bytes.length);
      out.write(bytes);
      out.write(JobSecret.mac(ctx.jobSecret(), label(ctx.rank(), peer, payload)));
      out.flush();
    } catch (IOException e) {
      throw new IOException("sending to rank " + peer + " at " + address + ": " + e, e);
    }
  }

  private String label(int from, int to, String payload) {
    return "danlu trainer rendezvous "
        + from
        + "->"
        + to
        + " attempt "
        + ctx.attempt()
        + " "
        + payload;
  }
}
