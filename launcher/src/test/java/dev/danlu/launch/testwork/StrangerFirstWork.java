package dev.danlu.launch.testwork;

import dev.danlu.launch.RankContext;
import dev.danlu.launch.RankWork;
import dev.danlu.launch.smoke.RingSmokeWork;
import java.io.DataOutputStream;
import java.net.Socket;

/**
 * Before rank 0 joins the ring, a "stranger" (a socket without the job secret) connects to rank 1's
 * listener and sends a well-formed hello with a wrong MAC, so rank 1 accepts it first. If rank 1
 * took it for its peer, the ring would read garbage and the run would fail.
 */
public final class StrangerFirstWork implements RankWork {
  @Override
  public String run(RankContext ctx) throws Exception {
    if (ctx.rank() != 0) {
      return new RingSmokeWork().run(ctx);
    }
    String target = ctx.peerAddresses().get(1);
    int colon = target.lastIndexOf(':');
    try (Socket stranger =
        new Socket(target.substring(0, colon), Integer.parseInt(target.substring(colon + 1)))) {
      DataOutputStream out = new DataOutputStream(stranger.getOutputStream());
      out.writeInt(0xDA1E0001); // the right magic
      out.writeInt(0); // claims to be rank 0
      out.writeInt(ctx.attempt());
      out.write(new byte[32]); // but cannot know the MAC
      out.flush();
      Thread.sleep(300); // rank 1 sees the stranger first
      return new RingSmokeWork().run(ctx);
    }
  }
}
